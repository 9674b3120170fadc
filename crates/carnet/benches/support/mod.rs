//! What the benches share (included with `#[path]`; not a bench target of its own).

use std::io::{BufRead, BufReader};
use std::process::Child;

/// The base URL a `carnet serve` started with piped stdout announces ("Carnet listening on …").
pub fn listening_base(server: &mut Child) -> String {
    let stdout = server.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("Carnet listening on ")
                .map(|u| u.trim().to_string())
        })
        .expect("server address")
}
