//! Keyed event-time windows: [`KeyedWindows`] owns, for one partition, the open windows of every
//! key (their [`Aggregate`]s and the source offsets they hold), the partition's watermark, and
//! which offsets may be acknowledged. It reads no clock: event times come with the records and
//! processing time is passed in.
//!
//! - **Windows.** Tumbling and sliding windows are aligned to event time 0: a window is
//!   `[start, start + size)` with `start` a multiple of the slide. A session of one key is
//!   `[first record, last record + gap)`; sessions that overlap or touch merge.
//! - **Watermark.** Computed by [`KeyedWindows::advance`] (not by each insert, so that all the
//!   records of a batch are judged against one watermark): the largest event time seen minus the
//!   out-of-orderness. It never goes back.
//! - **Firing and lateness** (Flink's rules). A window emits its result when the watermark
//!   reaches its end, and is kept until the watermark reaches `end + allowed_lateness`. A record
//!   for a window that fired but is still kept updates it, and the window emits again, marked as
//!   an update. A record whose windows are all past `end + allowed_lateness` is
//!   [`Insert::Late`]: it is not held, and the caller sends it to a side output and acknowledges
//!   it itself.
//! - **Idle timeout.** When no record has arrived for at least the idle timeout of processing
//!   time, the watermark moves on as if event time had run with processing time since the last
//!   arrival, so that an idle partition's windows close. Time while the partition is held back
//!   (backpressure: [`KeyedWindows::hold_idle_clock`]) is not idleness and does not count.
//! - **Acks.** An accepted record's offset is held until every window it was added to has
//!   emitted a result that includes it, then released exactly once, in an [`Emission`]'s
//!   `released`. An offset inserted twice (two values of one record) is released once, after
//!   both.
//!
//! (`window/tests.rs` begins with one window's walk: insert, advance, release.)
//!
//! Costs, with `n` open windows: an insert is `O(w log n)` where `w` is the number of windows the
//! record falls in (1 tumbling, about size/slide sliding, 1 plus the sessions merged); an
//! [`KeyedWindows::advance`] is `O(log n)` per window emitted or purged, plus sorting each
//! emission's released offsets. Memory is the open windows (an aggregate, and the offsets added
//! since the window last emitted) plus one map entry per held offset; a key's first window copies
//! the key once, and a key without windows is forgotten.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::operators::aggregate::Aggregate;
use crate::operators::error::OperatorError;

/// The operator's name in [`OperatorError`]s.
const OPERATOR: &str = "window";

/// The shape of the windows a record falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Back-to-back windows `[k * size, (k + 1) * size)`: a record falls in exactly one.
    Tumbling {
        /// The windows' length, a whole number of milliseconds.
        size: Duration,
    },
    /// Windows `[k * slide, k * slide + size)`: they overlap, and a record falls in size/slide
    /// of them. When the slide does not divide the size, a record falls in the floor or the
    /// ceiling of size/slide windows depending on where it lies (size 10 ms, slide 4 ms: a record
    /// at 2 ms falls in `[-4, 6)` and `[0, 10)`, one at 9 ms in `[0, 10)`, `[4, 14)`, `[8, 18)`).
    Sliding {
        /// The windows' length, a whole number of milliseconds, at least the slide.
        size: Duration,
        /// The distance between two windows' starts, a whole number of milliseconds.
        slide: Duration,
    },
    /// Per key, a record at `t` makes the session `[t, t + gap)`; sessions that overlap or touch
    /// merge into one, so a session ends `gap` after its last record.
    Session {
        /// The inactivity that closes a session, a whole number of milliseconds.
        gap: Duration,
    },
}

/// How a [`KeyedWindows`] windows, waits for late records and treats an idle partition: the
/// recipe it is built (and rebuilt after a restart) from.
///
/// `out_of_orderness` and `allowed_lateness` are used in whole milliseconds (rounded down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSettings {
    /// The windows' shape.
    pub kind: WindowKind,
    /// How far behind the largest event time seen the watermark stays.
    pub out_of_orderness: Duration,
    /// How long after its end (in watermark time) a window is kept to take late records.
    pub allowed_lateness: Duration,
    /// After this much processing time without a record, the watermark follows processing time;
    /// `None`: an idle partition's windows stay open until records come.
    pub idle_timeout: Option<Duration>,
}

impl WindowSettings {
    /// Checks the settings: a zero size, slide, gap or idle timeout is [`OperatorError::Zero`], a
    /// sliding size shorter than its slide [`OperatorError::WindowShorterThanSlide`], a span that
    /// is not whole milliseconds or any duration beyond `i64::MAX` milliseconds
    /// [`OperatorError::Invalid`].
    pub fn validate(&self) -> Result<(), OperatorError> {
        self.spans().map(|_| ())
    }

    /// The settings in event-time milliseconds, once checked.
    fn spans(&self) -> Result<Spans, OperatorError> {
        let shape = match self.kind {
            WindowKind::Tumbling { size } => {
                let size = span_ms("size", size)?;
                Shape::Fixed { size, slide: size }
            }
            WindowKind::Sliding { size, slide } => sliding_shape(size, slide)?,
            WindowKind::Session { gap } => Shape::Session {
                gap: span_ms("gap", gap)?,
            },
        };
        if self.idle_timeout.is_some_and(|idle| idle.is_zero()) {
            return Err(zero("idle_timeout"));
        }
        Ok(Spans {
            shape,
            out_of_orderness: millis("out_of_orderness", self.out_of_orderness)?,
            allowed_lateness: millis("allowed_lateness", self.allowed_lateness)?,
            idle_timeout: self.idle_timeout,
        })
    }
}

/// The shape of sliding windows, once checked.
fn sliding_shape(size: Duration, slide: Duration) -> Result<Shape, OperatorError> {
    if size.is_zero() {
        return Err(zero("size"));
    }
    if slide.is_zero() {
        return Err(zero("slide"));
    }
    if size < slide {
        return Err(OperatorError::WindowShorterThanSlide {
            operator: OPERATOR,
            size,
            slide,
        });
    }
    Ok(Shape::Fixed {
        size: span_ms("size", size)?,
        slide: span_ms("slide", slide)?,
    })
}

fn zero(setting: &'static str) -> OperatorError {
    OperatorError::Zero {
        operator: OPERATOR,
        setting,
    }
}

/// A window span in milliseconds: positive and whole.
fn span_ms(setting: &'static str, span: Duration) -> Result<i64, OperatorError> {
    if span.is_zero() {
        return Err(zero(setting));
    }
    if span.subsec_nanos() % 1_000_000 != 0 {
        return Err(OperatorError::Invalid {
            operator: OPERATOR,
            why: format!("{setting} {span:?} is not a whole number of milliseconds"),
        });
    }
    millis(setting, span)
}

/// A duration in whole milliseconds (rounded down), if it fits event time.
fn millis(setting: &'static str, duration: Duration) -> Result<i64, OperatorError> {
    i64::try_from(duration.as_millis()).map_err(|_| OperatorError::Invalid {
        operator: OPERATOR,
        why: format!("{setting} {duration:?} exceeds i64::MAX milliseconds"),
    })
}

/// [`WindowSettings`] in event-time milliseconds.
#[derive(Debug, Clone, Copy)]
struct Spans {
    shape: Shape,
    out_of_orderness: i64,
    allowed_lateness: i64,
    idle_timeout: Option<Duration>,
}

/// Window shapes in milliseconds: tumbling windows are fixed windows whose slide is their size.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Fixed { size: i64, slide: i64 },
    Session { gap: i64 },
}

/// The starts of the fixed windows holding `time`, latest first (so ends decrease too). An event
/// time of `i64::MAX` lies in no window (the last one's end saturates to it).
fn window_starts(time: i64, size: i64, slide: i64) -> impl Iterator<Item = i64> {
    let latest = time.div_euclid(slide).saturating_mul(slide);
    std::iter::successors(Some(latest), move |start| start.checked_sub(slide))
        .take_while(move |start| start.saturating_add(size) > time)
}

/// What became of an inserted record.
#[must_use = "a Late record must go to the side output and be acknowledged by the caller"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Added to at least one open window; its offset is held until released in an
    /// [`Emission`].
    Accepted,
    /// Every window it falls in is past `end + allowed_lateness`: not held. The caller sends it
    /// to the side output and acknowledges it.
    Late,
}

/// A window's result: the first one when the watermark reaches the window's end, an update when
/// a late record changed it since.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Emission {
    /// The key.
    pub key: Vec<u8>,
    /// The window's start (event time, inclusive).
    pub start_ms: i64,
    /// The window's end (event time, exclusive).
    pub end_ms: i64,
    /// The aggregate of every record the window holds.
    pub aggregate: Aggregate,
    /// Whether a result for the same `(key, start_ms, end_ms)` was emitted before, so this one
    /// replaces it. (A session that grows after it emitted emits under its new bounds, with
    /// `update` false.)
    pub update: bool,
    /// The offsets that may now be acknowledged, ascending: those whose every window (each one
    /// they were added to) has now emitted them. A held offset is released in exactly one
    /// emission, and is no longer held after it.
    pub released: Vec<i64>,
}

/// One window's state.
#[derive(Debug)]
struct Window {
    /// Its end; its start is its key in [`KeyState::windows`].
    end: i64,
    aggregate: Aggregate,
    /// Offsets added since the window last emitted, once per addition.
    unemitted: Vec<i64>,
    /// A result for these bounds was emitted.
    emitted: bool,
}

impl Window {
    fn new(end: i64) -> Self {
        Window {
            end,
            aggregate: Aggregate::EMPTY,
            unemitted: Vec::new(),
            emitted: false,
        }
    }

    /// Takes in a session merged into this one; `same_bounds`: `other` had this one's bounds.
    fn absorb(&mut self, mut other: Window, same_bounds: bool) {
        self.aggregate.merge(&other.aggregate);
        if self.unemitted.is_empty() {
            std::mem::swap(&mut self.unemitted, &mut other.unemitted);
        } else {
            self.unemitted.append(&mut other.unemitted);
        }
        self.emitted |= same_bounds && other.emitted;
    }
}

/// The windows of one key.
#[derive(Debug, Default)]
struct KeyState {
    /// By start. Sessions are disjoint and never touch, so their ends ascend too.
    windows: BTreeMap<i64, Window>,
}

impl KeyState {
    /// The bounds of `[start, end)` merged with every session it overlaps or touches.
    fn merged_bounds(&self, start: i64, end: i64) -> (i64, i64) {
        self.windows
            .range(..=end)
            .rev()
            .take_while(|(_, session)| session.end >= start)
            .fold((start, end), |(low, high), (&session_start, session)| {
                (low.min(session_start), high.max(session.end))
            })
    }

    /// Removes one session that overlaps or touches `[start, end)`.
    fn take_touching(&mut self, start: i64, end: i64) -> Option<(i64, Window)> {
        let (&session_start, _) = self
            .windows
            .range(..=end)
            .next_back()
            .filter(|(_, session)| session.end >= start)?;
        self.windows.remove_entry(&session_start)
    }
}

/// A window's place in a queue: ordered by time, then the window's start, then its key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: i64,
    start: i64,
    key: Arc<[u8]>,
}

/// The windows waiting for the watermark.
#[derive(Debug)]
struct Queues {
    allowed_lateness: i64,
    /// Windows holding records not yet emitted, by end: exactly those with `unemitted` not empty.
    fire: BTreeSet<Timer>,
    /// Every window, by the watermark that purges it (`end + allowed_lateness`).
    purge: BTreeSet<Timer>,
}

impl Queues {
    fn fire_timer(key: &Arc<[u8]>, start: i64, end: i64) -> Timer {
        Timer {
            at: end,
            start,
            key: Arc::clone(key),
        }
    }

    fn purge_timer(&self, key: &Arc<[u8]>, start: i64, end: i64) -> Timer {
        Timer {
            at: end.saturating_add(self.allowed_lateness),
            start,
            key: Arc::clone(key),
        }
    }

    /// A window `[start, end)` was created.
    fn created(&mut self, key: &Arc<[u8]>, start: i64, end: i64) {
        self.purge.insert(self.purge_timer(key, start, end));
    }

    /// A window now holds records not yet emitted (it is new, or had emitted everything).
    fn became_due(&mut self, key: &Arc<[u8]>, start: i64, end: i64) {
        self.fire.insert(Self::fire_timer(key, start, end));
    }

    /// A window was removed (merged into another session).
    fn removed(&mut self, key: &Arc<[u8]>, start: i64, window: &Window) {
        self.purge.remove(&self.purge_timer(key, start, window.end));
        if !window.unemitted.is_empty() {
            self.fire.remove(&Self::fire_timer(key, start, window.end));
        }
    }
}

/// Removes and returns the first timer of `queue` if the watermark has reached it.
fn pop_due(queue: &mut BTreeSet<Timer>, watermark: i64) -> Option<Timer> {
    if queue.first()?.at <= watermark {
        queue.pop_first()
    } else {
        None
    }
}

/// For each held offset, how many of the windows it was added to have yet to emit it.
#[derive(Debug, Default)]
struct PendingAcks {
    windows_left: HashMap<i64, u32>,
}

impl PendingAcks {
    fn hold(&mut self, offset: i64) {
        *self.windows_left.entry(offset).or_insert(0) += 1;
    }

    /// One window emitted `offset`: true when it was the last, and the offset is released.
    fn emitted(&mut self, offset: i64) -> bool {
        match self.windows_left.get_mut(&offset) {
            Some(left) if *left > 1 => {
                *left -= 1;
                false
            }
            Some(_) => {
                self.windows_left.remove(&offset);
                true
            }
            None => false,
        }
    }
}

/// The partition's event clock: the largest event time seen, the last arrival, the watermark,
/// and how much of the time since the last arrival the partition was held back (that time is
/// not idleness).
#[derive(Debug, Default)]
struct EventClock {
    max_event_time: Option<i64>,
    last_arrival: Option<Instant>,
    watermark: Option<i64>,
    /// Time held back since the last arrival.
    held: Duration,
    /// The last look at the clock (an arrival, an advance or a hold): a hold counts the time
    /// since then as held.
    last_look: Option<Instant>,
    /// The last advance moved the watermark past event time (the idle timeout).
    idle_advance: bool,
    /// The watermark reached by idle advances made while the windows held the partition's cap.
    closed_at_cap: Option<i64>,
}

impl EventClock {
    fn arrived(&mut self, event_time: i64, now: Instant) {
        self.max_event_time = Some(
            self.max_event_time
                .map_or(event_time, |max| max.max(event_time)),
        );
        self.last_arrival = Some(now);
        self.held = Duration::ZERO;
        self.look(now);
    }

    fn look(&mut self, now: Instant) {
        self.last_look = Some(self.last_look.map_or(now, |last| last.max(now)));
    }

    /// The partition is held back at `now`: the time since the last look was not idleness.
    fn hold(&mut self, now: Instant) {
        if let Some(last) = self.last_look {
            self.held += now.saturating_duration_since(last);
        }
        self.look(now);
    }

    /// Moves the watermark on (never back), for an idle partition too; `None` before any record.
    fn advance(&mut self, now: Instant, spans: &Spans) -> Option<i64> {
        self.look(now);
        let max = self.max_event_time?;
        let quiet = self.last_arrival.map_or(Duration::ZERO, |last| {
            now.saturating_duration_since(last)
                .saturating_sub(self.held)
        });
        let idle = spans.idle_timeout.is_some_and(|timeout| quiet >= timeout);
        self.idle_advance = idle;
        let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        let event_now = if idle {
            max.saturating_add(quiet_ms)
        } else {
            max
        };
        let candidate = event_now.saturating_sub(spans.out_of_orderness);
        let watermark = self
            .watermark
            .map_or(candidate, |current| current.max(candidate));
        self.watermark = Some(watermark);
        Some(watermark)
    }

    /// Whether a window ending at `end` still takes records: the watermark has not reached
    /// `end + allowed_lateness`.
    fn is_open(&self, end: i64, allowed_lateness: i64) -> bool {
        self.watermark
            .is_none_or(|watermark| end.saturating_add(allowed_lateness) > watermark)
    }
}

/// A record being inserted.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    time: i64,
    value: f64,
    offset: i64,
}

/// The keyed windows of one partition (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct KeyedWindows {
    spans: Spans,
    clock: EventClock,
    /// The windows hold the partition's cap of unacknowledged records (see
    /// [`KeyedWindows::at_cap`]).
    at_cap: bool,
    keys: HashMap<Arc<[u8]>, KeyState>,
    queues: Queues,
    acks: PendingAcks,
}

impl KeyedWindows {
    /// Windows built from `settings`, once [validated](WindowSettings::validate).
    pub(crate) fn new(settings: WindowSettings) -> Result<Self, OperatorError> {
        let spans = settings.spans()?;
        Ok(KeyedWindows {
            spans,
            clock: EventClock::default(),
            at_cap: false,
            keys: HashMap::new(),
            queues: Queues {
                allowed_lateness: spans.allowed_lateness,
                fire: BTreeSet::new(),
                purge: BTreeSet::new(),
            },
            acks: PendingAcks::default(),
        })
    }

    /// Adds the record (`value` at `event_time_ms`, read from `offset`) to every open window of
    /// `key` it falls in, and holds its offset; or, when all those windows are past their
    /// allowed lateness, returns [`Insert::Late`] and holds nothing. `now` is processing time,
    /// for the idle timeout. Nothing is emitted until [`KeyedWindows::advance`].
    pub(crate) fn insert(
        &mut self,
        key: &[u8],
        event_time_ms: i64,
        value: f64,
        offset: i64,
        now: Instant,
    ) -> Insert {
        self.clock.arrived(event_time_ms, now);
        let record = Arrival {
            time: event_time_ms,
            value,
            offset,
        };
        match self.spans.shape {
            Shape::Fixed { size, slide } => self.insert_fixed(key, record, size, slide),
            Shape::Session { gap } => self.insert_session(key, record, gap),
        }
    }

    fn insert_fixed(&mut self, key: &[u8], record: Arrival, size: i64, slide: i64) -> Insert {
        let clock = &self.clock;
        let lateness = self.spans.allowed_lateness;
        let mut open_starts = window_starts(record.time, size, slide)
            .take_while(|start| clock.is_open(start.saturating_add(size), lateness))
            .peekable();
        if open_starts.peek().is_none() {
            return Insert::Late;
        }
        let (key, state) = key_state(&mut self.keys, key);
        for start in open_starts {
            let end = start.saturating_add(size);
            let window = match state.windows.entry(start) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    self.queues.created(&key, start, end);
                    entry.insert(Window::new(end))
                }
            };
            if window.unemitted.is_empty() {
                self.queues.became_due(&key, start, end);
            }
            add(window, record, &mut self.acks);
        }
        Insert::Accepted
    }

    fn insert_session(&mut self, key: &[u8], record: Arrival, gap: i64) -> Insert {
        let own = (record.time, record.time.saturating_add(gap));
        let (start, end) = self
            .keys
            .get(key)
            .map_or(own, |state| state.merged_bounds(own.0, own.1));
        if !self.clock.is_open(end, self.spans.allowed_lateness) {
            return Insert::Late;
        }
        let (key, state) = key_state(&mut self.keys, key);
        let mut session = Window::new(end);
        while let Some((old_start, old)) = state.take_touching(start, end) {
            self.queues.removed(&key, old_start, &old);
            let same_bounds = old_start == start && old.end == end;
            session.absorb(old, same_bounds);
        }
        // The sessions merged lost their timers; the new one holds at least this record.
        self.queues.created(&key, start, end);
        self.queues.became_due(&key, start, end);
        add(&mut session, record, &mut self.acks);
        state.windows.insert(start, session);
        Insert::Accepted
    }

    /// Moves the watermark on (for the idle timeout, `now` is processing time), emits every
    /// window it reached that holds records not yet emitted, and purges the windows past their
    /// allowed lateness. Emissions come by end, then start, then key.
    pub(crate) fn advance(&mut self, now: Instant) -> Vec<Emission> {
        let mut emissions = Vec::new();
        let Some(watermark) = self.clock.advance(now, &self.spans) else {
            return emissions;
        };
        if self.at_cap && self.clock.idle_advance {
            self.clock.closed_at_cap = Some(watermark);
        }
        while let Some(timer) = pop_due(&mut self.queues.fire, watermark) {
            emissions.extend(self.emit(&timer));
        }
        while let Some(timer) = pop_due(&mut self.queues.purge, watermark) {
            self.purge(&timer);
        }
        emissions
    }

    /// The result of the window `timer` was queued for (present by the queues' invariant).
    fn emit(&mut self, timer: &Timer) -> Option<Emission> {
        let window = self
            .keys
            .get_mut(&*timer.key)?
            .windows
            .get_mut(&timer.start)?;
        let mut released = std::mem::take(&mut window.unemitted);
        released.retain(|&offset| self.acks.emitted(offset));
        released.sort_unstable();
        Some(Emission {
            key: timer.key.to_vec(),
            start_ms: timer.start,
            end_ms: window.end,
            aggregate: window.aggregate,
            update: std::mem::replace(&mut window.emitted, true),
            released,
        })
    }

    /// Forgets the window `timer` was queued for: it emitted everything it held, since the fire
    /// queue is drained up to the same watermark first.
    fn purge(&mut self, timer: &Timer) {
        let Some(state) = self.keys.get_mut(&*timer.key) else {
            return;
        };
        state.windows.remove(&timer.start);
        if state.windows.is_empty() {
            self.keys.remove(&*timer.key);
        }
    }

    /// The partition is held back (backpressure) at `now`: the time since the last arrival,
    /// advance or hold was not idleness, and does not count toward the idle timeout. Call it
    /// (on a timer) while records cannot come; idle time counted before stays counted.
    pub(crate) fn hold_idle_clock(&mut self, now: Instant) {
        self.clock.hold(now);
    }

    /// Whether the windows hold the partition's cap of unacknowledged records (the source
    /// waits for them to close): the idle advances made meanwhile close windows at the cap, and
    /// the records that come for them after are [`Lateness::ClosedAtCap`], not late.
    pub(crate) fn at_cap(&mut self, at_cap: bool) {
        self.at_cap = at_cap;
    }

    /// Why a record at `event_time_ms` was [`Insert::Late`]: its latest window would still be
    /// open by event time alone, and an idle advance at the cap closed it
    /// ([`Lateness::ClosedAtCap`]); else it is [`Lateness::Late`].
    pub(crate) fn lateness(&self, event_time_ms: i64) -> Lateness {
        let end = match self.spans.shape {
            Shape::Fixed { size, slide } => window_starts(event_time_ms, size, slide)
                .next()
                .map_or(i64::MAX, |start| start.saturating_add(size)),
            Shape::Session { gap } => event_time_ms.saturating_add(gap),
        };
        let closes_at = end.saturating_add(self.spans.allowed_lateness);
        let open_by_event_time = self
            .clock
            .max_event_time
            .is_none_or(|max| closes_at > max.saturating_sub(self.spans.out_of_orderness));
        match self.clock.closed_at_cap {
            Some(reached) if open_by_event_time && closes_at <= reached => Lateness::ClosedAtCap,
            _ => Lateness::Late,
        }
    }

    /// The watermark as of the last [`KeyedWindows::advance`]; `None` before any record.
    pub(crate) fn watermark(&self) -> Option<i64> {
        self.clock.watermark
    }

    /// How many distinct offsets are held (accepted and not yet released).
    pub(crate) fn held(&self) -> usize {
        self.acks.windows_left.len()
    }

    /// How many windows are kept, over all keys (emitted ones waiting out their lateness
    /// included).
    pub(crate) fn open_windows(&self) -> usize {
        self.queues.purge.len()
    }
}

/// Why a record was [`Insert::Late`] (see [`KeyedWindows::lateness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lateness {
    /// Every window it falls in closed by event time before it came.
    Late,
    /// Its window would be open by event time: the idle timeout closed it while the windows
    /// held the partition's cap of unacknowledged records.
    ClosedAtCap,
}

/// The windows of `key` (created empty for a new key, which copies the key, once) and the key's
/// shared handle.
fn key_state<'a>(
    keys: &'a mut HashMap<Arc<[u8]>, KeyState>,
    key: &[u8],
) -> (Arc<[u8]>, &'a mut KeyState) {
    let handle = keys
        .get_key_value(key)
        .map_or_else(|| Arc::from(key), |(known, _)| Arc::clone(known));
    let state = keys.entry(Arc::clone(&handle)).or_default();
    (handle, state)
}

/// Adds a record to a window and holds its offset once more.
fn add(window: &mut Window, record: Arrival, acks: &mut PendingAcks) {
    window.aggregate.add(record.value);
    window.unemitted.push(record.offset);
    acks.hold(record.offset);
}

#[cfg(test)]
mod tests;
