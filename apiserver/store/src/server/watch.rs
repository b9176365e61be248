use std::pin::Pin;

use futures::Stream;
use skiff_proto::etcd::{WatchRequest, WatchResponse, watch_server::Watch};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::Store;
use crate::watch::{self, WatchOptions};

pub(crate) struct WatchService {
    pub store: Store,
    pub options: WatchOptions,
    pub stop: CancellationToken,
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // A bounded queue: a client that stops reading holds back only its
        // own stream, which then catches up from disk.
        let (out, responses) = mpsc::channel(256);
        tokio::spawn(watch::serve(
            self.store.clone(),
            request.into_inner(),
            out,
            self.options.clone(),
            self.stop.child_token(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }
}
