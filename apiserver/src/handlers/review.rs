//! POST of a review (`kubectl auth can-i`, `kubectl auth whoami`): the
//! object comes back with its status filled in for the requesting user, and
//! nothing is stored. See `registry::reviews`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};

use super::{prepare, respond};
use crate::authn::UserInfo;
use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::http::request::Target;
use crate::object;

pub async fn review(
    method: &Method,
    headers: &HeaderMap,
    target: &Target,
    user: Option<&UserInfo>,
    body: Body,
) -> ApiResult<Response> {
    let resource = target.resource;
    let Some(answer) = resource.review else {
        return Err(ApiError::internal(format!(
            "{} is not a review",
            resource.plural
        )));
    };
    if method != Method::POST || target.name.is_some() || target.sub.is_some() {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {}): \
             reviews are only created",
            resource.qualified()
        )));
    }
    // The authentication middleware lets no request without a user this far.
    let user = user.ok_or_else(ApiError::unauthorized)?;
    let bytes = body::read(body).await?;
    let mut obj = crate::protobuf::decode_body(resource, &body::content_type(headers), &bytes)?;
    prepare::check_kind(resource, &mut obj)?;
    let errors = resource.strategy.validate(&obj);
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            resource.kind,
            resource.group,
            object::name(&obj),
            &errors,
        ));
    }
    answer(&mut obj, user);
    Ok(respond(StatusCode::CREATED, &obj))
}
