//! Recipes: [`ChildSpec`] says how to start a child (a worker factory or a nested supervisor) and
//! how to treat it; [`SupervisorSpec`] is a validated supervisor recipe. A restart always starts
//! from the recipe, never from the old state.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::child_control::ChildControl;
use crate::error::SupervisionError;
use crate::path::validate_name;
use crate::policy::{RestartPolicy, SupervisionStrategy};
use crate::resource::{OwnedResource, OwnerContext, ResourceFactory};
use crate::settings::{Backoff, SupervisorSettings};
use crate::worker::{start_worker, Worker, WorkerStart};

/// Capacity of a supervisor's command queue.
pub(crate) const COMMAND_CAPACITY: usize = 64;

/// The default mailbox capacity of a worker.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 16;
/// The default time a worker gets to stop before its supervisor moves on.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The default time a supervisor gets to stop its whole subtree: longer than its workers', so
/// that a parent never gives up on a child still stopping its own children.
pub const DEFAULT_SUPERVISOR_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts one incarnation of a worker; erases the worker's type.
pub(crate) trait WorkerRecipe: Send + Sync + 'static {
    fn start(&self, start: WorkerStart) -> Arc<dyn ChildControl>;
}

struct FactoryRecipe<F>(Arc<F>);

impl<W, F> WorkerRecipe for FactoryRecipe<F>
where
    W: Worker,
    F: Fn() -> W + Send + Sync + 'static,
{
    fn start(&self, start: WorkerStart) -> Arc<dyn ChildControl> {
        start_worker(Arc::clone(&self.0), start)
    }
}

#[derive(Clone)]
pub(crate) enum ChildKind {
    Worker(Arc<dyn WorkerRecipe>),
    Supervisor(Arc<SupervisorSpec>),
}

/// Everything about a child but its name; shared by the children made from one recipe, so that
/// 100,000 partition actors carry one copy.
#[derive(Clone)]
pub(crate) struct ChildTemplate {
    pub(crate) kind: &'static str,
    pub(crate) policy: RestartPolicy,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) mailbox_capacity: usize,
    pub(crate) arbiter: Option<usize>,
    pub(crate) recipe: ChildKind,
}

/// How to start a child and how to treat it when it stops: a name and a (shared) recipe.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: Arc<str>,
    pub(crate) template: Arc<ChildTemplate>,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("kind", &self.template.kind)
            .field("policy", &self.template.policy)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A worker built by `factory` at each start (on the arbiter it runs on). Kind `worker`,
    /// Permanent, mailbox of [`DEFAULT_MAILBOX_CAPACITY`].
    pub fn worker<W, F>(name: impl Into<String>, factory: F) -> Self
    where
        W: Worker,
        F: Fn() -> W + Send + Sync + 'static,
    {
        Self::new(
            name,
            "worker",
            DEFAULT_MAILBOX_CAPACITY,
            ChildKind::Worker(Arc::new(FactoryRecipe(Arc::new(factory)))),
        )
    }

    /// A nested supervisor with its own children. Kind `supervisor`, Permanent.
    pub fn supervisor(name: impl Into<String>, spec: SupervisorSpec) -> Self {
        Self::new(
            name,
            "supervisor",
            COMMAND_CAPACITY,
            ChildKind::Supervisor(Arc::new(spec)),
        )
    }

    fn new(
        name: impl Into<String>,
        kind: &'static str,
        capacity: usize,
        recipe: ChildKind,
    ) -> Self {
        ChildSpec {
            name: Arc::from(name.into()),
            template: Arc::new(ChildTemplate {
                kind,
                policy: RestartPolicy::Permanent,
                shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
                mailbox_capacity: capacity,
                arbiter: None,
                recipe,
            }),
        }
    }

    /// Another child from the same recipe under `name` (sharing it: many partition actors cost
    /// one recipe).
    pub fn named(&self, name: impl Into<String>) -> Self {
        ChildSpec {
            name: Arc::from(name.into()),
            template: Arc::clone(&self.template),
        }
    }

    /// The restart policy.
    pub fn policy(mut self, policy: RestartPolicy) -> Self {
        Arc::make_mut(&mut self.template).policy = policy;
        self
    }

    /// The actor kind shown in the registry and in metrics (`partition`, `sink`, ...).
    pub fn kind(mut self, kind: &'static str) -> Self {
        Arc::make_mut(&mut self.template).kind = kind;
        self
    }

    /// How long the child gets to stop (for a supervisor: its whole subtree).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.template).shutdown_timeout = timeout;
        self
    }

    /// The worker's mailbox capacity, at least 1 (ignored for supervisors).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        if matches!(self.template.recipe, ChildKind::Worker(_)) {
            Arc::make_mut(&mut self.template).mailbox_capacity = capacity;
        }
        self
    }

    /// Pins the child to one of the runtime's arbiters (index modulo their number); by default
    /// children are spread round-robin.
    pub fn on_arbiter(mut self, index: usize) -> Self {
        Arc::make_mut(&mut self.template).arbiter = Some(index);
        self
    }

    /// The child's name (its last path segment).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn validate(&self) -> Result<(), SupervisionError> {
        validate_name(&self.name).map_err(|why| SupervisionError::InvalidName {
            name: self.name.to_string(),
            why,
        })?;
        if self.template.mailbox_capacity == 0 {
            return Err(SupervisionError::InvalidSetting {
                setting: "mailbox_capacity",
                why: format!(
                    "child {:?}: a mailbox holds at least one message",
                    &*self.name
                ),
            });
        }
        Ok(())
    }
}

/// A validated supervisor recipe: settings, children in start order, and what it owns.
#[derive(Clone)]
pub struct SupervisorSpec {
    pub(crate) settings: SupervisorSettings,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) owns: Option<ResourceFactory>,
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("settings", &self.settings)
            .field("children", &self.children)
            .field("owns", &self.owns.is_some())
            .finish()
    }
}

impl SupervisorSpec {
    /// Starts a builder with the default settings (OneForOne, 20 restarts in 30 s, backoff
    /// 20 ms to 10 s, factor 2).
    pub fn builder() -> SupervisorSpecBuilder {
        SupervisorSpecBuilder {
            settings: SupervisorSettings::default(),
            children: Vec::new(),
            owns: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &SupervisorSettings {
        &self.settings
    }
}

/// Builds a [`SupervisorSpec`]; `build()` validates settings, names and duplicates.
pub struct SupervisorSpecBuilder {
    settings: SupervisorSettings,
    children: Vec<ChildSpec>,
    owns: Option<ResourceFactory>,
}

impl SupervisorSpecBuilder {
    /// All settings at once.
    pub fn settings(mut self, settings: SupervisorSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The strategy.
    pub fn strategy(mut self, strategy: SupervisionStrategy) -> Self {
        self.settings.strategy = strategy;
        self
    }

    /// Restart intensity: at most `max_restarts` within `within`.
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.settings.max_restarts = max_restarts;
        self.settings.within = within;
        self
    }

    /// Backoff between restarts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Adds a child (children start in the order they are added).
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Adds several children.
    pub fn children(mut self, children: impl IntoIterator<Item = ChildSpec>) -> Self {
        self.children.extend(children);
        self
    }

    /// Gives the supervisor a resource made by `factory` at each start, after its children
    /// started (an `Err` fails the supervisor, which its parent restarts with backoff), and
    /// dropped before its children stop.
    pub fn owning<F>(mut self, factory: F) -> Self
    where
        F: Fn(&OwnerContext) -> Result<OwnedResource, crate::reason::Failure>
            + Send
            + Sync
            + 'static,
    {
        self.owns = Some(Arc::new(factory));
        self
    }

    /// Validates and returns the recipe.
    pub fn build(self) -> Result<SupervisorSpec, SupervisionError> {
        self.settings.validate()?;
        let mut names = HashSet::with_capacity(self.children.len());
        for child in &self.children {
            child.validate()?;
            if !names.insert(&*child.name) {
                return Err(SupervisionError::DuplicateChild {
                    supervisor: "(a new supervisor spec)".to_owned(),
                    name: child.name.to_string(),
                });
            }
        }
        Ok(SupervisorSpec {
            settings: self.settings,
            children: self.children,
            owns: self.owns,
        })
    }
}
