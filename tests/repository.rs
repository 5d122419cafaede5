//! The repository stands on its own: a clone builds and tests without anything beside it, and
//! the files its users look for are there and agree with the version.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the repository worth reading (no build output, no VCS data).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "node_modules") {
                files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn nothing_refers_to_files_outside_the_repository() {
    // Spelled in pieces, so this file does not match itself.
    let outside = [
        concat!("..", "/shared"),
        concat!("shared", "/fixtures"),
        concat!("DESIGN", ".md"),
    ];
    let mut all = Vec::new();
    files(&root(), &mut all);
    assert!(all.len() > 50, "walked the repository: {} files", all.len());
    let mut found = Vec::new();
    for path in &all {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue; // binary
        };
        for needle in outside {
            for (n, line) in text.lines().enumerate() {
                if line.contains(needle) {
                    found.push(format!(
                        "{}:{}: {}",
                        path.strip_prefix(root()).unwrap_or(path).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to files outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn recorded_api_responses_are_in_the_repository() {
    let dir = root().join("tests/fixtures/k8s-api");
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).expect("SOURCES.md");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "SOURCES.md" {
            n += 1;
            // Every file is accounted for in SOURCES.md (some rows name a group of files).
            let stem = name.split('.').take(2).collect::<Vec<_>>().join(".");
            assert!(sources.contains(&stem), "{name} is not in SOURCES.md");
        }
    }
    assert!(n >= 30, "{n} fixtures");
}

#[test]
fn license_and_changelog_agree_with_cargo_toml() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"MIT\""));
    let license = std::fs::read_to_string(root().join("LICENSE")).expect("LICENSE");
    assert!(license.starts_with("MIT License"), "LICENSE is not MIT");
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).expect("CHANGELOG.md");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        changelog.contains(&format!("## {version} ")) || changelog.contains("## Unreleased"),
        "CHANGELOG.md has no section for {version}"
    );
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile.scratch")).unwrap();
    assert!(
        dockerfile.contains("MIT"),
        "the image label declares the license"
    );
}

/// What `scripts/test-summary.awk` prints for a test log, and its exit code.
fn summary(log: &str) -> (String, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.log");
    std::fs::write(&path, log).unwrap();
    let out = std::process::Command::new("awk")
        .arg("-f")
        .arg(root().join("scripts/test-summary.awk"))
        .arg(&path)
        .output()
        .expect("awk");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

/// `make test`'s closing line counts what ran, from a `cargo test --no-fail-fast` log: every
/// test's own result line (failures included, captured output in a failure report left out),
/// and a binary that crashed or never built as a failure it names.
#[test]
fn make_test_summary_counts_what_ran() {
    let log = "\
   Compiling k8s-network-test-daemonset v0.2.0
     Running unittests src/lib.rs (target/debug/deps/a-1)

running 3 tests
test plan::tests::one ... ok
test plan::tests::two ... ignored, needs root
test plan::tests::three ... ok

test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/dns.rs (target/debug/deps/dns-2)

running 2 tests
test child ... ok
test parent ... FAILED

failures:

---- parent stdout ----
child output:
test child ... ok
test other ... FAILED

failures:
    parent

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s

error: test failed, to rerun pass `--test dns`
     Running tests/e2e.rs (target/debug/deps/e2e-3)

running 2 tests
test teardown ... ok
error: test failed, to rerun pass `--test e2e`

Caused by:
  process didn't exit successfully: `target/debug/deps/e2e-3` (signal: 6, SIGABRT: process abort signal)
     Running tests/ok.rs (target/debug/deps/ok-4)

running 1 test
test fine ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests k8s_network_test_daemonset

running 1 test
test src/lib.rs - run (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s

error: 2 targets failed:
    `--test dns`
    `--test e2e`
";
    let (text, code) = summary(log);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "did not finish (crashed or killed; counted as 1 failed): tests/e2e.rs (target/debug/deps/e2e-3)",
            "tests: 6 passed, 2 failed, 1 skipped",
        ],
        "{text}"
    );
    assert_eq!(code, Some(1), "a failure fails make test");

    // A clean log passes, and a build that failed counts.
    let clean = "     Running tests/ok.rs (x)\ntest fine ... ok\ntest result: ok. 1 passed\n";
    assert_eq!(
        summary(clean),
        (
            "tests: 1 passed, 0 failed, 0 skipped\n".to_string(),
            Some(0)
        )
    );
    let (text, code) =
        summary("error: could not compile `x` (test \"y\") due to 1 previous error\n");
    assert!(
        text.ends_with("tests: 0 passed, 1 failed, 0 skipped\n"),
        "{text}"
    );
    assert_eq!(code, Some(1));
    // The Makefile runs every binary and closes with this script.
    let make = std::fs::read_to_string(root().join("Makefile")).unwrap();
    assert!(make.contains("--no-fail-fast") && make.contains("scripts/test-summary.awk"));
}
