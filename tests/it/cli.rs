//! The `streamvisor` binary from outside: `check` on good and broken files.

use std::process::Command;

fn streamvisor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamvisor"))
}

#[test]
fn check_accepts_the_examples() {
    for example in ["examples/quickstart.toml", "examples/passthrough.toml"] {
        let output = streamvisor()
            .args(["check", example])
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn check_names_the_field_and_line_of_a_broken_file_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("streamvisor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        "name = \"broken\"\n[sources.events]\nkind = \"kafka\"\ntopic = \"events\"\ncolour = \"blue\"\n",
    )
    .expect("write");
    let output = streamvisor()
        .args(["check"])
        .arg(&broken)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
    assert!(stderr.contains("line 5"), "{stderr}");

    let missing = streamvisor()
        .args(["check", "no/such/file.toml"])
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read no/such/file.toml"));
}
