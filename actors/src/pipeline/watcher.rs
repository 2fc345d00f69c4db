//! The rewind rule, carried out: a thread that follows the tree's lifecycle events and, when an
//! actor holding records of a partition fails, asks the source to rewind that partition (every
//! partition, for a sink).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use streamvisor_supervision::{Lifecycle, TreeHandle};
use tokio::sync::broadcast::error::RecvError;

use crate::source::kafka::{SourceHandle, SourceInput};

/// Which partitions a failure at a path rewinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rewinds {
    /// One partition.
    Partition(i32),
    /// Every partition.
    All,
    /// None (not an actor of this pipeline's data path).
    None,
}

/// Maps a failed actor's path to the partitions to rewind, for the pipeline at `pipeline`
/// (`/pipelines/<p>`) whose source is `source` (`/pipelines/<p>/sources/<s>`).
pub(crate) fn rewinds_for(path: &str, pipeline: &str, source: &str) -> Rewinds {
    let partition_of = |name: &str| name.strip_prefix('p').and_then(|n| n.parse().ok());
    if let Some(rest) = path
        .strip_prefix(source)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        return partition_of(rest).map_or(Rewinds::None, Rewinds::Partition);
    }
    if let Some(rest) = path.strip_prefix(pipeline) {
        if rest == "/stages" {
            return Rewinds::All;
        }
        if let Some(stage) = rest.strip_prefix("/stages/") {
            return match stage.split_once('/') {
                Some((_, name)) => partition_of(name).map_or(Rewinds::None, Rewinds::Partition),
                // A stage group restarted with no children: every partition rewinds, and the
                // rewind starts their stage actors again.
                None => Rewinds::All,
            };
        }
        // A sink, or the sinks' supervisor (whose failure stops the sink without a failure
        // of its own): what the sink held is lost, every partition rewinds.
        if rest == "/sinks" || rest.starts_with("/sinks/") {
            return Rewinds::All;
        }
    }
    Rewinds::None
}

/// True for `/pipelines/<p>/stages` and `/pipelines/<p>/stages/<st>`.
fn is_stage_group(path: &str, pipeline: &str) -> bool {
    path.strip_prefix(pipeline)
        .and_then(|rest| rest.strip_prefix("/stages"))
        .is_some_and(|rest| rest.is_empty() || !rest[1..].contains('/'))
}

/// Starts the watcher thread; it ends when `stop` is set (checked at each event) or the tree ends.
pub(crate) fn watch_failures(
    tree: &TreeHandle,
    pipeline: String,
    source_path: String,
    source: SourceHandle,
    stop: Arc<AtomicBool>,
) {
    let mut events = tree.subscribe();
    let spawned = std::thread::Builder::new()
        .name("rewind-watcher".to_owned())
        .spawn(move || loop {
            let rewinds = match events.blocking_recv() {
                Ok(event) => match event.event {
                    Lifecycle::Failed { .. } => {
                        rewinds_for(event.path.as_str(), &pipeline, &source_path)
                    }
                    // A stage group (or the stages supervisor) that started again has no
                    // partition actors: rewinding every partition starts them again.
                    Lifecycle::Restarted { .. } | Lifecycle::Started { .. }
                        if is_stage_group(event.path.as_str(), &pipeline) =>
                    {
                        Rewinds::All
                    }
                    _ => Rewinds::None,
                },
                // Missed events may have been failures: rewinding everything is always safe.
                Err(RecvError::Lagged(_)) => Rewinds::All,
                Err(RecvError::Closed) => return,
            };
            if stop.load(Ordering::Acquire) {
                return;
            }
            let sent = match rewinds {
                Rewinds::Partition(partition) => source.send(SourceInput::Rewind {
                    partition,
                    incarnation: None,
                }),
                Rewinds::All => source.send(SourceInput::RewindAll),
                Rewinds::None => true,
            };
            if !sent {
                return;
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start the rewind watcher");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_the_partitions_they_held() {
        let (pipeline, source) = ("/pipelines/p", "/pipelines/p/sources/s");
        assert_eq!(
            rewinds_for("/pipelines/p/sources/s/p3", pipeline, source),
            Rewinds::Partition(3)
        );
        assert_eq!(
            rewinds_for("/pipelines/p/stages/map/p12", pipeline, source),
            Rewinds::Partition(12)
        );
        assert_eq!(
            rewinds_for("/pipelines/p/sinks/out", pipeline, source),
            Rewinds::All
        );
        assert_eq!(
            rewinds_for("/pipelines/p/sinks", pipeline, source),
            Rewinds::All
        );
        assert_eq!(
            rewinds_for("/pipelines/p/sources/s", pipeline, source),
            Rewinds::None
        );
        assert_eq!(
            rewinds_for("/pipelines/q/sinks/out", pipeline, source),
            Rewinds::None
        );
        assert_eq!(
            rewinds_for("/pipelines/p/stages/map", pipeline, source),
            Rewinds::All
        );
        assert_eq!(
            rewinds_for("/pipelines/p/stages", pipeline, source),
            Rewinds::All
        );
        assert!(is_stage_group("/pipelines/p/stages", pipeline));
        assert!(is_stage_group("/pipelines/p/stages/map", pipeline));
        assert!(!is_stage_group("/pipelines/p/stages/map/p3", pipeline));
        assert!(!is_stage_group("/pipelines/p/sinks/out", pipeline));
    }
}
