//! The window stage; [`Windowed`] is its state for one partition: reads each record's key,
//! event time and value (JSON field paths, or the Kafka key and timestamp), feeds the keyed
//! windows, and turns their emissions into output records.
//!
//! Delivery (DESIGN.md): a record absorbed into open windows is not acknowledged until every
//! window holding it has emitted and that emission is persisted: each output batch *covers* the
//! offsets its emissions released (acknowledged with it). An aggregate has no single origin:
//! its record's offset is [`NO_OFFSET`] and its identity is (stage, key, window start, window
//! end); its Kafka key is the window's key. After a rewind (a newer incarnation) the state is
//! dropped and rebuilt by the replay.
//!
//! Output value (JSON): `{"key", "start_ms", "end_ms", "count", "sum", "min", "max", "mean",
//! "update"}` (`sum` to `mean` only when a value field is set; `update` when the same window
//! was emitted before and a late record changed it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use streamvisor_supervision::{Failure, WorkerContext};

pub(crate) use super::core::Rejected;
use super::core::StageCore;
use super::{StageLogic, StageMessage, StageWorker};
use crate::operators::error::OperatorError;
use crate::operators::json::FieldPath;
use crate::operators::window::{Emission, Insert, KeyedWindows, Lateness, WindowSettings};
use crate::pipeline::dead_letters::DeadLetterReason;
use crate::record::{Batch, RecordRef, NO_OFFSET};
use crate::source::partition_flow::windows_fill_the_cap;

/// How a window stage reads records.
#[derive(Clone, Debug)]
pub struct WindowRecipe {
    /// The windows.
    pub settings: WindowSettings,
    /// The key: this JSON field (a string or a number); none: the Kafka key.
    pub key: Option<FieldPath>,
    /// The event time in milliseconds: this JSON field; none: the Kafka timestamp.
    pub time: Option<FieldPath>,
    /// The aggregated value: this JSON field (a number); none: records are only counted.
    pub value: Option<FieldPath>,
}

impl WindowRecipe {
    /// How often the windows are advanced without input (idle timeout, late watermarks).
    pub fn tick(&self) -> Duration {
        self.settings
            .idle_timeout
            .map(|idle| (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)))
            .unwrap_or(Duration::from_secs(1))
    }
}

/// One partition's windows.
pub(crate) struct Windowed {
    recipe: WindowRecipe,
    windows: KeyedWindows,
    incarnation: u64,
    key: Vec<u8>,
    emissions: Vec<Emission>,
    /// The topic and partition of the input (the timer's emissions go there).
    input: Option<(Arc<str>, i32)>,
}

impl std::fmt::Debug for Windowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windowed")
            .field("incarnation", &self.incarnation)
            .field("held", &self.windows.held())
            .field("open_windows", &self.windows.open_windows())
            .finish()
    }
}

impl Windowed {
    /// Empty windows.
    pub(crate) fn new(recipe: WindowRecipe) -> Result<Self, OperatorError> {
        let windows = KeyedWindows::new(recipe.settings)?;
        Ok(Windowed {
            recipe,
            windows,
            incarnation: 0,
            key: Vec::new(),
            emissions: Vec::new(),
            input: None,
        })
    }

    /// Remembers where `batch` came from (the timer's emissions go the same way).
    pub(crate) fn remember_input(&mut self, batch: &Batch) {
        if self.input.is_none() {
            self.input = Some((Arc::clone(batch.topic()), batch.partition()));
        }
    }

    /// The topic and partition of the input, once a batch came.
    pub(crate) fn last_input(&self) -> Option<(Arc<str>, i32)> {
        self.input.clone()
    }

    /// Records held in open windows (not acknowledged yet).
    pub(crate) fn held(&self) -> usize {
        self.windows.held()
    }

    /// The partition incarnation served (0 before the first batch).
    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Feeds `batch`; records it cannot take go to `rejected`. A batch of an older incarnation
    /// is ignored (replayed anyway); a newer one drops the state first.
    pub(crate) fn absorb(
        &mut self,
        batch: &Batch,
        now: Instant,
        rejected: &mut Vec<Rejected>,
    ) -> Result<(), OperatorError> {
        if batch.incarnation() < self.incarnation {
            return Ok(());
        }
        if batch.incarnation() > self.incarnation {
            if self.incarnation != 0 {
                self.windows = KeyedWindows::new(self.recipe.settings)?;
            }
            self.incarnation = batch.incarnation();
        }
        for (index, record) in batch.iter().enumerate() {
            match self.read(&record) {
                Ok((time, value)) => {
                    let inserted = self
                        .windows
                        .insert(&self.key, time, value, record.offset, now);
                    if inserted == Insert::Late {
                        rejected.push(self.late(index, time));
                    }
                }
                Err(why) => rejected.push(Rejected::refused(index, why)),
            }
        }
        Ok(())
    }

    /// The dead letter of the record at `index` of event time `time`, which came too late.
    fn late(&self, index: usize, time: i64) -> Rejected {
        let watermark = self.windows.watermark().unwrap_or(i64::MIN);
        match self.windows.lateness(time) {
            Lateness::Late => Rejected {
                index,
                reason: DeadLetterReason::Late,
                why: format!(
                    "late record: event time {time} ms is past its windows' allowed lateness \
                     (watermark {watermark} ms)"
                ),
            },
            Lateness::ClosedAtCap => Rejected {
                index,
                reason: DeadLetterReason::WindowClosedAtCap,
                why: format!(
                    "window closed at the unacked cap: event time {time} ms, its window closed \
                     early (watermark {watermark} ms) because the open windows held the \
                     partition's max_unacked_per_partition records"
                ),
            },
        }
    }

    /// Tells the windows whether they hold the partition's cap of unacknowledged records
    /// (`unacked_cap`: the source's cap and batch size), so that a close they make meanwhile
    /// is known as a close at the cap.
    pub(crate) fn note_cap(&mut self, (max_unacked, batch_size): (usize, usize)) {
        let at_cap = windows_fill_the_cap(self.held(), max_unacked, batch_size);
        self.windows.at_cap(at_cap);
    }

    /// Reads the key (into `self.key`), event time and value of `record`.
    fn read(&mut self, record: &RecordRef<'_>) -> Result<(i64, f64), String> {
        self.key.clear();
        let needs_json =
            self.recipe.key.is_some() || self.recipe.time.is_some() || self.recipe.value.is_some();
        let json: Value = if needs_json {
            serde_json::from_slice(record.value)
                .map_err(|error| format!("window: the record is not JSON: {error}"))?
        } else {
            Value::Null
        };
        match &self.recipe.key {
            Some(path) => {
                if !crate::operators::json::write_key(&json, path, &mut self.key) {
                    return Err(format!(
                        "window: key field `{path}` is missing or neither a string nor a number"
                    ));
                }
            }
            None => self.key.extend_from_slice(record.key.unwrap_or_default()),
        }
        let time = match &self.recipe.time {
            Some(path) => match path.get(&json).and_then(Value::as_i64) {
                Some(time) => time,
                None => {
                    return Err(format!(
                        "window: time field `{path}` is missing or not an integer of milliseconds"
                    ))
                }
            },
            None => record
                .timestamp_ms
                .ok_or_else(|| "window: the record has no Kafka timestamp".to_owned())?,
        };
        let value = match &self.recipe.value {
            Some(path) => crate::operators::json::number_of(&json, path).ok_or_else(|| {
                format!("window: value field `{path}` is missing or not a number")
            })?,
            None => 0.0,
        };
        Ok((time, value))
    }

    /// The partition is held back (backpressure) at `now`: its quiet does not count toward the
    /// idle timeout (see [`KeyedWindows::hold_idle_clock`]).
    pub(crate) fn held_back(&mut self, now: Instant) {
        self.windows.hold_idle_clock(now);
    }

    /// Advances the windows; the emissions as output batches of `topic`/`partition` of at most
    /// `max_records` each (what the next actor's inlet can take), each covering the offsets its
    /// emissions released (none when nothing was emitted).
    pub(crate) fn emit(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        now: Instant,
        max_records: usize,
    ) -> Vec<Batch> {
        self.emissions.clear();
        self.emissions.extend(self.windows.advance(now));
        let with_value = self.recipe.value.is_some();
        let mut value = Vec::new();
        self.emissions
            .chunks(max_records.max(1))
            .map(|emissions| {
                let mut batch = Batch::new(
                    Arc::clone(topic),
                    partition,
                    self.incarnation,
                    emissions.len(),
                );
                for emission in emissions {
                    encode(emission, with_value, &mut value);
                    batch.push(
                        NO_OFFSET,
                        Some(emission.end_ms),
                        Some(&emission.key),
                        &value,
                    );
                    batch.cover(emission.released.iter().copied());
                }
                batch
            })
            .collect()
    }
}

/// Writes `emission` as an output record's JSON value into `value`.
fn encode(emission: &Emission, with_value: bool, value: &mut Vec<u8>) {
    value.clear();
    let aggregate = &emission.aggregate;
    let mut fields = serde_json::Map::new();
    fields.insert(
        "key".into(),
        Value::String(String::from_utf8_lossy(&emission.key).into_owned()),
    );
    fields.insert("start_ms".into(), emission.start_ms.into());
    fields.insert("end_ms".into(), emission.end_ms.into());
    fields.insert("count".into(), aggregate.count.into());
    if with_value {
        fields.insert("sum".into(), number(aggregate.sum));
        fields.insert("min".into(), number(aggregate.min));
        fields.insert("max".into(), number(aggregate.max));
        fields.insert("mean".into(), number(aggregate.mean()));
    }
    fields.insert("update".into(), emission.update.into());
    // A map of plain values always serialises.
    let _ = serde_json::to_writer(value, &Value::Object(fields));
}

/// A JSON number (null for a value JSON cannot hold).
fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The window stage's logic: its windows, the tick that advances them without input, and what
/// the source was last told they hold.
pub(super) struct WindowLogic {
    windowed: Windowed,
    tick: Duration,
    /// A tick is pending.
    ticking: bool,
    /// What the source was last told the windows hold: (incarnation, records).
    reported_held: (u64, usize),
}

impl WindowLogic {
    pub(super) fn new(recipe: WindowRecipe) -> Result<Self, OperatorError> {
        Ok(WindowLogic {
            tick: recipe.tick(),
            windowed: Windowed::new(recipe)?,
            ticking: false,
            reported_held: (0, 0),
        })
    }

    fn schedule_tick(&mut self, ctx: &mut WorkerContext<'_, StageWorker>) {
        if !self.ticking {
            self.ticking = true;
            ctx.send_later(StageMessage::Tick, self.tick);
        }
    }

    /// Tells the source how many records the windows hold, when that changed (a drain does
    /// not wait for them).
    fn report_held(&mut self, stage: &StageCore) {
        let now = (self.windowed.incarnation(), self.windowed.held());
        if now == self.reported_held {
            return;
        }
        let Some((topic, partition)) = self.windowed.last_input() else {
            return;
        };
        if let Some(source) = stage.recipe.acks.source(&topic) {
            source.send(crate::source::kafka::SourceInput::HeldInWindows {
                partition,
                incarnation: now.0,
                records: now.1,
            });
            self.reported_held = now;
        }
    }

    /// Absorbs `batch`; returns the last emission (the input's credit comes back with it), the
    /// others already pushed without credit.
    fn absorb(&mut self, batch: Batch, stage: &mut StageCore) -> Result<Option<Batch>, Failure> {
        let now = Instant::now();
        stage.rejected.clear();
        self.windowed
            .absorb(&batch, now, &mut stage.rejected)
            .map_err(|error| Failure::new(error.to_string()))?;
        stage.dead_letter(&batch)?;
        let chunk = stage.emission_chunk();
        self.windowed.remember_input(&batch);
        self.windowed.note_cap(stage.recipe.unacked_cap);
        let mut emitted = self
            .windowed
            .emit(batch.topic(), batch.partition(), now, chunk);
        let last = emitted.pop();
        for batch in emitted {
            stage.push(batch, 0);
        }
        Ok(last)
    }
}

impl StageLogic for WindowLogic {
    fn started(&mut self, _stage: &mut StageCore, ctx: &mut WorkerContext<'_, StageWorker>) {
        self.schedule_tick(ctx);
    }

    fn apply(&mut self, batch: Batch, stage: &mut StageCore) -> Result<Option<Batch>, Failure> {
        let output = self.absorb(batch, stage)?;
        self.report_held(stage);
        Ok(output)
    }

    /// Advances the windows on the timer; keeps the timer going. While the input is held back
    /// (this actor's outputs wait for credit, or the source has paused the partition), the
    /// quiet is backpressure, not idleness: the idle timeout starts again.
    fn tick(
        &mut self,
        stage: &mut StageCore,
        ctx: &mut WorkerContext<'_, StageWorker>,
    ) -> Result<(), Failure> {
        self.ticking = false;
        let chunk = stage.emission_chunk();
        if let (Some((topic, partition)), true) = (self.windowed.last_input(), stage.out.is_some())
        {
            let now = Instant::now();
            let source_holds_back = || {
                stage
                    .recipe
                    .acks
                    .source(&topic)
                    .is_some_and(|source| source.holds_back(partition))
            };
            if !stage.outputs_idle() || source_holds_back() {
                self.windowed.held_back(now);
            }
            self.windowed.note_cap(stage.recipe.unacked_cap);
            for emitted in self.windowed.emit(&topic, partition, now, chunk) {
                stage.push(emitted, 0);
            }
        }
        self.report_held(stage);
        self.schedule_tick(ctx);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
