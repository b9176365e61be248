use std::pin::Pin;

use futures::{Stream, StreamExt};
use skiff_proto::etcd::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, lease_server::Lease,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::Store;

pub(crate) struct LeaseService {
    pub store: Store,
    pub stop: CancellationToken,
}

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let req = request.into_inner();
        let (id, ttl, revision) = self.store.lease_grant(req.id, req.ttl).await?;
        Ok(Response::new(LeaseGrantResponse {
            header: Some(self.store.header(revision)),
            id,
            ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let revision = self.store.lease_revoke(request.into_inner().id).await?;
        Ok(Response::new(LeaseRevokeResponse {
            header: Some(self.store.header(revision)),
        }))
    }

    type LeaseKeepAliveStream =
        Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

    /// Each keep-alive is answered with the lease's TTL, or TTL 0 when the
    /// lease is gone (etcd's answer; clients then stop keeping it alive).
    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut requests = request.into_inner();
        let (out, responses) = mpsc::channel(64);
        let store = self.store.clone();
        let stop = self.stop.child_token();
        tokio::spawn(async move {
            loop {
                let req = tokio::select! {
                    _ = stop.cancelled() => return,
                    next = requests.next() => match next {
                        Some(Ok(req)) => req,
                        Some(Err(_)) | None => return,
                    },
                };
                let ttl = store.lease_renew(req.id).unwrap_or(0);
                let response = LeaseKeepAliveResponse {
                    header: Some(store.header(store.revision())),
                    id: req.id,
                    ttl,
                };
                if out.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }

    /// An unknown lease is not an error here: etcd answers TTL -1.
    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        let header = Some(self.store.header(self.store.revision()));
        let response = match self.store.lease_time_to_live(req.id, req.keys)? {
            Some(lease) => LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: lease.remaining,
                granted_ttl: lease.granted,
                keys: lease.keys,
            },

            None => LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: -1,
                ..Default::default()
            },
        };
        Ok(Response::new(response))
    }

    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self
            .store
            .lease_ids()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.store.header(self.store.revision())),
            leases,
        }))
    }
}
