//! The default memory budget for records in flight: a quarter of the memory the process may
//! use (its cgroup's limit, v2 or v1, when it has one; else the machine's memory).

use std::path::Path;

/// The budget when the config sets none, and where its figure came from.
pub(crate) fn default_budget() -> (usize, &'static str) {
    let (memory, from) = cgroup_limit()
        .map(|limit| (limit, "the cgroup's memory limit"))
        .or_else(|| machine_memory().map(|total| (total, "the machine's memory")))
        // Neither readable (not Linux): 4 GiB of memory assumed.
        .unwrap_or((4 << 30, "4 GiB assumed"));
    (memory / 4, from)
}

/// The memory limit of this process's cgroup: v2's `memory.max`, else v1's
/// `memory.limit_in_bytes` (none when unlimited).
fn cgroup_limit() -> Option<usize> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup_limit_in(Path::new("/sys/fs/cgroup"), &cgroups)
}

/// [`cgroup_limit`] for the cgroup file system at `root` and the lines of
/// `/proc/self/cgroup`.
fn cgroup_limit_in(root: &Path, cgroups: &str) -> Option<usize> {
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        let file = if controllers.is_empty() {
            root.join(path).join("memory.max")
        } else if controllers.split(',').any(|name| name == "memory") {
            root.join("memory").join(path).join("memory.limit_in_bytes")
        } else {
            continue;
        };
        // Inside a container the cgroup's own files are often at the root instead (the
        // file's ancestors: its folder for each component of `path`, then the root).
        let limit = read_limit(&file).or_else(|| {
            let components = path.split('/').filter(|part| !part.is_empty()).count();
            let root = file.ancestors().nth(components + 1)?;
            read_limit(&root.join(file.file_name()?))
        });
        if limit.is_some() {
            return limit;
        }
    }
    None
}

/// A cgroup limit file's figure; none for `max` or v1's "unlimited" (near `i64::MAX`).
fn read_limit(file: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    let limit: u64 = text.trim().parse().ok()?;
    (limit < 1 << 60)
        .then(|| usize::try_from(limit).ok())
        .flatten()
}

/// `MemTotal` of `/proc/meminfo`.
fn machine_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_quarter_of_what_the_process_may_use() {
        let (budget, from) = default_budget();
        let memory = cgroup_limit()
            .or_else(machine_memory)
            .expect("a Linux machine");
        assert_eq!(budget, memory / 4, "from {from}");
    }

    #[test]
    fn unlimited_cgroups_set_no_limit() {
        let dir = std::env::temp_dir().join(format!("streamvisor-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp folder");
        for (text, limit) in [
            ("max\n", None),
            ("9223372036854771712\n", None),
            ("536870912\n", Some(512 << 20)),
        ] {
            std::fs::write(dir.join("memory.max"), text).expect("a limit file");
            assert_eq!(read_limit(&dir.join("memory.max")), limit, "{text:?}");
        }
        // A container on cgroup v1: its own cgroup's files at the memory controller's root.
        let memory = dir.join("memory");
        std::fs::create_dir_all(&memory).expect("a controller folder");
        std::fs::write(memory.join("memory.limit_in_bytes"), "2147483648\n").expect("a limit");
        let cgroups = "5:cpu:/docker/abc\n4:memory:/docker/abc\n";
        assert_eq!(cgroup_limit_in(&dir, cgroups), Some(2 << 30));
        // cgroup v2: the process's own cgroup folder.
        let own = dir.join("system.slice/app.service");
        std::fs::create_dir_all(&own).expect("a cgroup folder");
        std::fs::write(own.join("memory.max"), "1073741824\n").expect("a limit");
        assert_eq!(
            cgroup_limit_in(&dir, "0::/system.slice/app.service\n"),
            Some(1 << 30)
        );
        std::fs::remove_dir_all(&dir).expect("the temp folder removed");
    }
}
