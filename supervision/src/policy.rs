//! The vocabulary of supervision: strategies, restart policies, kill modes, escalation choice.

use std::fmt;
use std::str::FromStr;

use crate::error::SupervisionError;

/// Which children a supervisor restarts when one fails (Erlang/OTP meanings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SupervisionStrategy {
    /// Restart only the failed child.
    #[default]
    OneForOne,
    /// Stop every other child (last started first), then restart all in start order.
    OneForAll,
    /// Stop the children started after the failed one (last first), then restart the failed child
    /// and those, in start order.
    RestForOne,
}

/// When a child is restarted after it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Always restarted, whatever the reason (a normal stop included).
    #[default]
    Permanent,
    /// Restarted only when it failed (not after a normal stop).
    Transient,
    /// Never restarted; it leaves the tree when it stops.
    Temporary,
}

/// How a kill by path ends an actor. Either way the kill is a failure, handled by the child's
/// restart policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KillMode {
    /// Fails the actor as if its handler returned an error (reason `Killed`).
    #[default]
    Stop,
    /// Panics inside one of the actor's handlers (reason `Panicked`), exercising panic containment.
    Panic,
}

impl KillMode {
    /// `"stop"` or `"panic"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KillMode::Stop => "stop",
            KillMode::Panic => "panic",
        }
    }
}

impl fmt::Display for KillMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KillMode {
    type Err = SupervisionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "stop" => Ok(KillMode::Stop),
            "panic" => Ok(KillMode::Panic),
            other => Err(SupervisionError::InvalidKillMode(other.to_owned())),
        }
    }
}

/// What the runtime does when its root supervisor escalates (every child already stopped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnEscalation {
    /// Exit the process with code 1, so that an orchestrator restarts it (`streamvisor run`).
    Exit,
    /// Stay up and report the escalation (an embedded runtime never exits its host process).
    #[default]
    Stay,
}

impl FromStr for OnEscalation {
    type Err = SupervisionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "exit" => Ok(OnEscalation::Exit),
            "stay" => Ok(OnEscalation::Stay),
            other => Err(SupervisionError::InvalidSetting {
                setting: "on_escalation",
                why: format!("expected \"exit\" or \"stay\", got {other:?}"),
            }),
        }
    }
}
