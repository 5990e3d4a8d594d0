//! The tasks this process runs right now, as `/cores/<host>` lists them:
//! written by the hot and cold loops, read by the heartbeat.

use replicator_common::paths::TaskRef;
use std::sync::Mutex;

/// Tasks this process runs right now, for `/cores/<host>`.
#[derive(Debug, Default)]
pub struct Running(Mutex<Vec<String>>);

impl Running {
    pub fn set(&self, task: &TaskRef, running: bool) {
        let mut g = self.0.lock().expect("running lock");
        let name = task.to_string();
        g.retain(|t| *t != name);
        if running {
            g.push(name);
            g.sort();
        }
    }
    pub fn list(&self) -> Vec<String> {
        self.0.lock().expect("running lock").clone()
    }
}
