//! Blue/green end to end: create.
