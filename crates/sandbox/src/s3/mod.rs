//! S3 on loopback: the real `s3s` implementation over a directory (`s3s-fs`), with the sandbox's
//! request record, fault injection and S3's refusals about buckets and regions ([`buckets`]) in
//! front of it.

pub mod buckets;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tower::Service;

use super::world::{ACCESS_KEY, SECRET_KEY, World};
use buckets::{Buckets, Strict};

#[derive(Clone)]
struct S3State {
    service: S3Service,
    world: Arc<World>,
    buckets: Arc<Buckets>,
}

/// The router serving S3 from `root` (created if missing), with `buckets` as the buckets that
/// exist.
pub fn router(
    root: &Path,
    world: Arc<World>,
    buckets: Arc<Buckets>,
) -> std::io::Result<axum::Router> {
    std::fs::create_dir_all(root)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    builder.set_access(Strict {
        buckets: buckets.clone(),
    });
    let state = S3State {
        service: builder.build(),
        world,
        buckets,
    };
    Ok(axum::Router::new().fallback(handle).with_state(state))
}

async fn handle(State(state): State<S3State>, req: Request) -> Response {
    let operation = format!("{} {}", req.method(), req.uri().path());
    if let Some(fault) = state.world.api_faults.take("s3", &operation) {
        state
            .world
            .requests
            .push("s3", operation, fault.status, Some("injected".into()));
        let code = match fault.status {
            429 | 503 => "SlowDown",
            _ => "InternalError",
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the sandbox scenario</Message></Error>"
        );
        let status = axum::http::StatusCode::from_u16(if fault.status == 429 {
            503
        } else {
            fault.status
        })
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        return (status, [("content-type", "application/xml")], body).into_response();
    }
    if let Some(refused) = buckets::wrong_region(
        &state.buckets,
        req.method(),
        req.uri().path(),
        req.headers(),
        req.uri().query(),
    ) {
        state
            .world
            .requests
            .push("s3", operation, refused.status().as_u16(), None);
        return refused;
    }
    let mut service = state.service.clone();
    match Service::call(&mut service, req).await {
        Ok(resp) => {
            state
                .world
                .requests
                .push("s3", operation, resp.status().as_u16(), None);
            resp.map(Body::new)
        }
        Err(e) => {
            state.world.requests.push("s3", operation, 500, None);
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("{e:?}"),
            )
                .into_response()
        }
    }
}
