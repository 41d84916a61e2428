//! Blue/green end to end: restore.
