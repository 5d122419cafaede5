//! The end-to-end suites' scenario runner: one lab, the scenarios in order, each starting from
//! the healthy cluster the one before left. The first failure ends the suite and names its
//! scenario (the lab's `Drop` tears everything down).

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Runs `scenarios` of `suite` in order through `run`. With `filter` naming an environment
/// variable that is set (`E2E_FAULTS=a,b`), only the scenarios it names run, after the first,
/// which always runs: it measures the healthy cluster the others compare with.
pub fn run<S: Copy>(
    suite: &str,
    filter: Option<&str>,
    scenarios: &[(&str, S)],
    mut run: impl FnMut(S),
) {
    let only: Option<BTreeSet<String>> = filter
        .and_then(|var| std::env::var(var).ok())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    for (i, (name, scenario)) in scenarios.iter().enumerate() {
        if i > 0 && only.as_ref().is_some_and(|o| !o.contains(*name)) {
            continue;
        }
        let n = format!("{} of {}", i + 1, scenarios.len());
        eprintln!("{suite} scenario {n}: {name}");
        let started = Instant::now();
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| run(*scenario))) {
            panic!(
                "{suite} scenario `{name}` ({n}) failed: {}",
                panic_message(e.as_ref())
            );
        }
        eprintln!(
            "{suite} scenario {n}: {name} passed in {:?}",
            started.elapsed()
        );
    }
}

/// What a caught panic said.
pub fn panic_message(e: &(dyn Any + Send)) -> &str {
    e.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| e.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}
