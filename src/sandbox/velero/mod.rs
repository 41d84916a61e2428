//! The emulated Velero server. (Being built: see the sandbox issue.)

use std::sync::Arc;

use crate::sandbox::world::World;

pub fn start(world: Arc<World>, _s3: aws_sdk_s3::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = world;
    })
}
