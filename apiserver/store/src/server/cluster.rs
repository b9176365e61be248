use skiff_proto::etcd::{Member, MemberListRequest, MemberListResponse, cluster_server::Cluster};
use tonic::{Request, Response, Status};

use crate::Store;

/// A cluster of one: the store itself.
pub(crate) struct ClusterService {
    pub store: Store,
    pub name: String,
    pub client_urls: Vec<String>,
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: Some(self.store.header(self.store.revision())),
            members: vec![Member {
                id: self.store.member_id(),
                name: self.name.clone(),
                peer_ur_ls: Vec::new(),
                client_ur_ls: self.client_urls.clone(),
                is_learner: false,
            }],
        }))
    }
}
