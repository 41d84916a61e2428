//! Blue/green end to end: traffic.
