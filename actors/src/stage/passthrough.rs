//! A passthrough stage: records go on unchanged (a copy stage, or a point to fan out from).

use super::StageLogic;

/// The passthrough stage's logic: [`StageLogic`]'s defaults.
pub(super) struct PassthroughLogic;

impl StageLogic for PassthroughLogic {}
