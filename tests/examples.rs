//! The examples run to completion by themselves: each is built and run as a
//! user would (`cargo run --example NAME`), and must exit 0 with its output.
use std::process::Command;
use std::time::{Duration, Instant};

fn run_example(name: &str, expect: &str) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo runs");
    // Building may take a while on a cold target; running takes a second.
    let deadline = Duration::from_secs(600);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("example {name} did not finish in {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "example {name} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(expect), "example {name} printed:\n{stdout}");
}

#[test]
fn the_uart_example_logs_in_through_a_16550_model() {
    run_example("uart", "Welcome, root.");
}

#[test]
fn the_console_server_example_replays_the_boot_log_and_bridges_a_login() {
    run_example("console_server", "operator sees: Welcome to vm, root!");
}

#[test]
fn the_qmp_client_example_negotiates_runs_commands_and_sees_events() {
    run_example("qmp_client", "\"event\":\"SHUTDOWN\"");
}
