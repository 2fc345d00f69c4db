//! A private PostgreSQL cluster for the tests: `initdb` in a temp folder (as the `postgres` user
//! when the tests run as root, since initdb refuses root), started with `pg_ctl` on a free
//! loopback port with password authentication, stopped (fast) when dropped. Debian's
//! `postgresql` package, installed by the README's test command, provides the binaries under
//! `/usr/lib/postgresql/<version>/bin` (or set `STREAMVISOR_PG_BIN`). A missing PostgreSQL
//! fails the test that needs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The test cluster's superuser and its password.
pub(crate) const USER: &str = "streamvisor";
/// Its password (a test secret, given to the sink through `PGPASSWORD` or a file).
pub(crate) const PASSWORD: &str = "test-only-password";

/// A running private cluster.
pub(crate) struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    as_postgres: bool,
}

fn binaries() -> PathBuf {
    if let Ok(bin) = std::env::var("STREAMVISOR_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run \
             scripts/test.sh, which installs Debian's postgresql, or set STREAMVISOR_PG_BIN"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// Creates and starts a cluster in a fresh folder named after `name`.
    pub(crate) fn start(name: &str) -> Self {
        let bin = binaries();
        let dir = crate::support::program::test_dir(&format!("postgres-{name}"));
        let data = dir.join("data");
        let as_postgres = is_root();
        std::fs::write(dir.join("pwfile"), PASSWORD).expect("password file");
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        let postgres = Postgres {
            bin,
            dir,
            data,
            port: crate::support::program::free_port(),
            as_postgres,
        };
        let data = postgres.data.display().to_string();
        let pwfile = postgres.dir.join("pwfile").display().to_string();
        run(&mut postgres.command(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                "--pwfile",
                &pwfile,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ));
        postgres.start_again();
        postgres
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let binary = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        };
        command.args(args).current_dir(&self.dir);
        command
    }

    /// Starts the cluster (again) and waits until it accepts connections.
    pub(crate) fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        let data = self.data.display().to_string();
        run(&mut self.command(
            "pg_ctl",
            &[
                "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start",
            ],
        ));
    }

    /// Stops the cluster, disconnecting its clients (fast shutdown).
    pub(crate) fn stop(&self) {
        let data = self.data.display().to_string();
        run(&mut self.command(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"],
        ));
    }

    /// A connection string for the sink (the password comes separately).
    pub(crate) fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres connect_timeout=5",
            self.port
        )
    }

    /// Runs `sql` and returns the rows' first columns as text.
    pub(crate) fn query(&self, sql: &str) -> Vec<String> {
        let output = run(Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// One number from `sql`.
    pub(crate) fn count(&self, sql: &str) -> i64 {
        let rows = self.query(sql);
        rows.first()
            .and_then(|row| row.trim().parse().ok())
            .unwrap_or_else(|| panic!("{sql}: not a number: {rows:?}"))
    }

    /// Its folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self
            .command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Runs `command` (within two minutes), panicking with its output when it fails.
fn run(command: &mut Command) -> Output {
    let output = crate::support::program::output_within(command, None, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
