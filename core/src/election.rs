//! Lowest-sequence election decisions: the pure functions live in
//! `replicator_common::election`, shared with the Monitor's leader election.

pub use replicator_common::election::{decide, leader, Role};
