use skiff_proto::etcd::{
    AlarmRequest, AlarmResponse, StatusRequest, StatusResponse, maintenance_server::Maintenance,
};
use tonic::{Request, Response, Status};

use super::ETCD_API_VERSION;
use crate::Store;

pub(crate) struct MaintenanceService {
    pub store: Store,
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    /// The store raises no alarms; the list is always empty.
    async fn alarm(
        &self,
        _request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        Ok(Response::new(AlarmResponse {
            header: Some(self.store.header(self.store.revision())),
            alarms: Vec::new(),
        }))
    }

    /// What `etcdctl endpoint status` prints. With one member there is no
    /// raft: the member is always the leader, the term is 1, and the raft
    /// indexes report the store revision (one entry per change).
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let revision = self.store.revision();
        let size = self.store.db_size() as i64;
        Ok(Response::new(StatusResponse {
            header: Some(self.store.header(revision)),
            version: ETCD_API_VERSION.to_string(),
            db_size: size,
            leader: self.store.member_id(),
            raft_index: revision as u64,
            raft_term: 1,
            raft_applied_index: revision as u64,
            errors: Vec::new(),
            db_size_in_use: size,
            is_learner: false,
        }))
    }
}
