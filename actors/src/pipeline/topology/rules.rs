//! What the actors cannot run, checked once for every pipeline (files and graphs built in Rust
//! alike): uneven fan-out branches, operator settings, and the shapes not supported yet.

use super::{NodePart, Topology, TopologyError};
use crate::operators::error::OperatorError;
use crate::pipeline::SinkTarget;
use crate::stage::Operation;

fn unsupported(node: &str, part: NodePart, why: impl Into<String>) -> Result<(), TopologyError> {
    Err(TopologyError::Unsupported {
        node: node.to_owned(),
        part,
        why: why.into(),
    })
}

impl Topology {
    /// Checks what the actors cannot run: the paths ([`Topology::paths`]), each operator's
    /// settings, at most one window stage, reading one input (a merge would hold each record
    /// twice and release it once), and no window or second sink with an exactly-once sink (its
    /// transactions commit offsets per record), nor a window before a PostgreSQL sink (an
    /// aggregate has no origin to dedupe on); and what may not follow a flat_map.
    pub fn validate(&self) -> Result<(), TopologyError> {
        self.paths()?;
        for stage in &self.stages {
            check_settings(&stage.operation).map_err(|error| TopologyError::InvalidSetting {
                node: stage.name.clone(),
                error,
            })?;
        }
        let windows: Vec<&str> =
            self.stages_where(|operation| matches!(operation, Operation::Window(_)));
        if let Some(second) = windows.get(1) {
            return unsupported(
                second,
                NodePart::Operation,
                "one window stage per pipeline so far",
            );
        }
        if let Some(window) = windows.first() {
            let inputs = self
                .stages
                .iter()
                .map(|stage| &stage.outputs)
                .chain(std::iter::once(&self.source_outputs))
                .filter(|outputs| outputs.consumers.iter().any(|consumer| consumer == window))
                .count();
            if inputs > 1 {
                return unsupported(
                    window,
                    NodePart::Inputs,
                    "a window stage reads one input (a merge would hold each record twice)",
                );
            }
        }
        self.check_sinks(!windows.is_empty())?;
        self.check_flat_maps()
    }

    /// An exactly-once sink is the only sink and follows no window; a PostgreSQL sink follows
    /// no window.
    fn check_sinks(&self, has_window: bool) -> Result<(), TopologyError> {
        for sink in &self.sinks {
            match sink.target {
                SinkTarget::KafkaExactlyOnce { .. } if self.sinks.len() > 1 => {
                    return unsupported(
                        &sink.name,
                        NodePart::Target,
                        "an exactly-once sink must be the pipeline's only sink (its \
                         transactions commit the consumed offsets)",
                    )
                }
                SinkTarget::KafkaExactlyOnce { .. } if has_window => {
                    return unsupported(
                        &sink.name,
                        NodePart::Target,
                        "not with a window stage yet: its transactions commit offsets per \
                         record, and a window releases records out of order",
                    )
                }
                SinkTarget::Postgres(_) if has_window => {
                    return unsupported(
                        &sink.name,
                        NodePart::Target,
                        "not after a window stage yet: an aggregate has no single origin to \
                         dedupe on (use a file or Kafka sink)",
                    )
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What may not follow a flat_map (its pieces share their source record's offset): another
    /// flat_map or a window (their bookkeeping is per offset), a PostgreSQL sink (it dedupes on
    /// the origin alone), an exactly-once sink (its transactions commit offsets per record); and
    /// a window may not precede one (the offsets an aggregate covers would ride with its last
    /// piece only).
    fn check_flat_maps(&self) -> Result<(), TopologyError> {
        let is_flat_map = |operation: &Operation| matches!(operation, Operation::FlatMap(_));
        for window in self.stages_where(|operation| matches!(operation, Operation::Window(_))) {
            let after = self.downstream_of(window);
            if let Some(flat_map) = self
                .stages_where(is_flat_map)
                .into_iter()
                .find(|stage| after.iter().any(|node| node == stage))
            {
                return unsupported(
                    flat_map,
                    NodePart::Operation,
                    format!(
                        "a flat_map cannot follow the window `{window}` yet (the offsets an \
                         aggregate covers would be settled with its last piece only)"
                    ),
                );
            }
        }
        for flat_map in self.stages_where(is_flat_map) {
            for node in self.downstream_of(flat_map) {
                if let Some(stage) = self.stages.iter().find(|stage| stage.name == node) {
                    let op = match stage.operation {
                        Operation::FlatMap(_) => "flat_map",
                        Operation::Window(_) => "window",
                        _ => continue,
                    };
                    return unsupported(
                        &node,
                        NodePart::Operation,
                        format!(
                            "a {op} stage cannot follow the flat_map `{flat_map}` yet (it keeps \
                             records by offset, and pieces share theirs)"
                        ),
                    );
                }
                let Some(sink) = self.sinks.iter().find(|sink| sink.name == node) else {
                    continue;
                };
                let why = match sink.target {
                    SinkTarget::Postgres(_) => format!(
                        "not after the flat_map `{flat_map}` yet: pieces share their origin, \
                         which the table dedupes on (use a file or Kafka sink)"
                    ),
                    SinkTarget::KafkaExactlyOnce { .. } => format!(
                        "not after the flat_map `{flat_map}` yet: its transactions commit \
                         offsets per record, and pieces share theirs"
                    ),
                    _ => continue,
                };
                return unsupported(&node, NodePart::Target, why);
            }
        }
        Ok(())
    }

    /// The stages whose operation matches, in flow order.
    fn stages_where(&self, matches: impl Fn(&Operation) -> bool) -> Vec<&str> {
        self.stages
            .iter()
            .filter(|stage| matches(&stage.operation))
            .map(|stage| stage.name.as_str())
            .collect()
    }

    /// Every stage and sink reachable from `name`.
    fn downstream_of(&self, name: &str) -> Vec<String> {
        let consumers = |node: &str| -> Vec<String> {
            self.stages
                .iter()
                .find(|stage| stage.name == node)
                .map(|stage| stage.outputs.consumers.clone())
                .unwrap_or_default()
        };
        let mut seen: Vec<String> = Vec::new();
        let mut next = consumers(name);
        while let Some(node) = next.pop() {
            if !seen.contains(&node) {
                next.extend(consumers(&node));
                seen.push(node);
            }
        }
        seen
    }
}

/// Builds an operation's logic once, as its actor will, to refuse settings that cannot work
/// at build time rather than in a restart loop; a window also needs an idle timeout here.
fn check_settings(operation: &Operation) -> Result<(), OperatorError> {
    if let Operation::Window(recipe) = operation {
        if recipe.settings.idle_timeout.is_none() {
            return Err(OperatorError::Invalid {
                operator: "window",
                why: "a window stage needs an idle timeout: a partition paused at its unacked \
                      cap gets no records, and only the idle timeout closes its windows"
                    .to_owned(),
            });
        }
    }
    crate::stage::check(operation)
}
