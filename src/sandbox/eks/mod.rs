//! The emulated EKS API. (Being built: see the sandbox issue.)

use std::sync::Arc;

use crate::sandbox::world::World;

pub fn router(world: Arc<World>) -> axum::Router {
    axum::Router::new().with_state(world)
}
