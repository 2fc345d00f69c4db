//! What may not come before or after a `flat_map` stage in a pipeline file (its pieces share
//! their source record's offset): after it, another flat_map or a window (their bookkeeping is
//! per offset), a PostgreSQL sink (it dedupes on the origin alone), an exactly-once sink (its
//! transactions commit offsets per record); before it, a window (the offsets its aggregates
//! cover would ride with the last piece only). The actors' `Topology::validate` holds the same
//! rule for graphs built in Rust; here the error names the TOML field.

use super::field::Invalid;
use super::model::PipelineConfig;

impl PipelineConfig {
    /// Checks what comes before and after each flat_map stage.
    pub(super) fn check_flat_maps(&self) -> Result<(), Invalid> {
        for (name, stage) in &self.stages {
            if stage.is_window() {
                if let Some(flat_map) = self
                    .downstream(name)
                    .into_iter()
                    .find(|node| self.stages.get(node).is_some_and(|s| s.op == "flat_map"))
                {
                    return Err((
                        format!("stages.{flat_map}.op"),
                        format!(
                            "a flat_map cannot follow the window `{name}` yet (the offsets an \
                             aggregate covers would be settled with its last piece only)"
                        ),
                    ));
                }
            }
            if stage.op != "flat_map" {
                continue;
            }
            for node in self.downstream(name) {
                if let Some(stage) = self.stages.get(&node) {
                    if stage.op == "flat_map" || stage.is_window() {
                        return Err((
                            format!("stages.{node}.op"),
                            format!(
                                "a {} stage cannot follow the flat_map `{name}` yet (it keeps \
                                 records by offset, and pieces share theirs)",
                                stage.op
                            ),
                        ));
                    }
                }
                if let Some(sink) = self.sinks.get(&node) {
                    if sink.exactly_once == Some(true) {
                        return Err((
                            format!("sinks.{node}.exactly_once"),
                            format!(
                                "not after the flat_map `{name}` yet: its transactions commit \
                                 offsets per record, and pieces share theirs"
                            ),
                        ));
                    }
                    if sink.kind == "postgres" {
                        return Err((
                            format!("sinks.{node}.kind"),
                            format!(
                                "not after the flat_map `{name}` yet: pieces share their origin, \
                                 which the table dedupes on (use a file or Kafka sink)"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every stage and sink reachable from `node`.
    fn downstream(&self, node: &str) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut next = self.consumers_of(node);
        while let Some(node) = next.pop() {
            if !seen.contains(&node) {
                next.extend(self.consumers_of(&node));
                seen.push(node);
            }
        }
        seen
    }
}
