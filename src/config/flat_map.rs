//! What may not follow a `flat_map` stage in a pipeline file (its pieces share their source
//! record's offset): another flat_map or a window (their bookkeeping is per offset), a
//! PostgreSQL sink (it dedupes on the origin alone), an exactly-once sink (its transactions
//! commit offsets per record). The actors' `Topology::validate` holds the same rule for graphs
//! built in Rust; here the error names the TOML field.

use super::model::{Invalid, PipelineConfig};

impl PipelineConfig {
    /// Checks what follows each flat_map stage.
    pub(super) fn check_flat_maps(&self) -> Result<(), Invalid> {
        for (name, _) in self
            .stages
            .iter()
            .filter(|(_, stage)| stage.op == "flat_map")
        {
            let mut seen: Vec<String> = Vec::new();
            let mut next = self.consumers_of(name);
            while let Some(node) = next.pop() {
                if seen.contains(&node) {
                    continue;
                }
                next.extend(self.consumers_of(&node));
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
                seen.push(node);
            }
        }
        Ok(())
    }
}
