//! The DNS server: hickory-server parses and answers; [`ClusterDns`] says
//! what — names of the cluster domain from the [`Zone`], anything else from
//! the upstream resolvers ([`super::upstream`]).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, PTR, SRV};
use hickory_server::proto::rr::{Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::zone::{Data, Resolution, Zone};

/// How long answers from the cluster domain may be cached (CoreDNS' default).
pub const TTL: u32 = 30;

/// Answers from the zone, forwards the rest.
pub struct ClusterDns {
    pub zone: Arc<RwLock<Zone>>,
    pub upstreams: Vec<SocketAddr>,
}

fn record(name: &str, data: &Data) -> Option<Record> {
    let owner = Name::from_ascii(format!("{name}.")).ok()?;
    let fqdn = |n: &str| Name::from_ascii(format!("{n}.")).ok();
    let rdata = match data {
        Data::A(ip) => RData::A(A(*ip)),
        Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Data::Cname(target) => RData::CNAME(CNAME(fqdn(target)?)),
        Data::Ptr(target) => RData::PTR(PTR(fqdn(target)?)),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, fqdn(target)?)),
    };
    Some(Record::from_rdata(owner, TTL, rdata))
}

#[async_trait::async_trait]
impl RequestHandler for ClusterDns {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            let msg = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return send(&mut response, msg, &request.metadata).await;
        };
        let qname = info.query.name().to_string();
        let qtype = info.query.query_type().to_string();
        let resolution = self
            .zone
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .resolve(&qname, &qtype);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        match resolution {
            Resolution::Records(answers) => {
                metadata.authoritative = true;
                let records: Vec<Record> = answers
                    .iter()
                    .filter_map(|a| record(&a.name, &a.data))
                    .collect();
                tracing::debug!(%qname, %qtype, answers = records.len(), "dns");
                let msg = builder.build(metadata, records.iter(), [], [], []);
                send(&mut response, msg, &request.metadata).await
            }
            Resolution::NoData => {
                metadata.authoritative = true;
                let msg = builder.build_no_records(metadata);
                send(&mut response, msg, &request.metadata).await
            }
            Resolution::NxDomain => {
                let msg = builder.error_msg(&request.metadata, ResponseCode::NXDomain);
                send(&mut response, msg, &request.metadata).await
            }
            Resolution::Outside => {
                match super::upstream::forward(request.as_slice(), &self.upstreams).await {
                    Ok(answer) => {
                        metadata.response_code = answer.metadata.response_code;
                        let msg = builder.build(
                            metadata,
                            answer.answers.iter(),
                            answer.authorities.iter(),
                            [],
                            answer.additionals.iter(),
                        );
                        send(&mut response, msg, &request.metadata).await
                    }
                    Err(e) => {
                        tracing::debug!(%qname, error = %e, "dns: forwarding failed");
                        let msg = builder.error_msg(&request.metadata, ResponseCode::ServFail);
                        send(&mut response, msg, &request.metadata).await
                    }
                }
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Metadata,
) -> ResponseInfo {
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "dns: cannot send the answer");
            let mut failed = Metadata::response_from_request(request);
            failed.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_server::proto::op::Header {
                metadata: failed,
                counts: Default::default(),
            })
        }
    }
}
