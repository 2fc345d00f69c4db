//! Aggregates of `f64` values: [`Aggregate`] keeps count, sum, min and max in constant space (so
//! that two of them merge, as session windows need).
//!
//! An empty aggregate (no value added) has count 0, sum 0, min `+inf`, max `-inf` and mean NaN:
//! the identities of each figure, so that merging with an empty aggregate changes nothing. Windows
//! never emit an empty aggregate.

/// Count, sum, min and max of the values added so far.
///
/// A NaN value is counted and makes the sum (and the mean) NaN; min and max pass over it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Aggregate {
    /// How many values were added.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest (`+inf` when empty).
    pub min: f64,
    /// The largest (`-inf` when empty).
    pub max: f64,
}

impl Aggregate {
    /// The aggregate of no values.
    pub(crate) const EMPTY: Aggregate = Aggregate {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    /// Whether no value was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one value.
    pub(crate) fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every value of `other` (as if they had been added one by one, up to the rounding of
    /// the sum).
    pub(crate) fn merge(&mut self, other: &Aggregate) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The mean of the values; NaN when empty.
    pub(crate) fn mean(&self) -> f64 {
        if self.is_empty() {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate::EMPTY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Aggregate {
        let mut aggregate = Aggregate::EMPTY;
        values.iter().for_each(|&value| aggregate.add(value));
        aggregate
    }

    #[test]
    fn adds_values() {
        let aggregate = of(&[3.0, -1.0, 4.0]);
        assert_eq!(
            aggregate,
            Aggregate {
                count: 3,
                sum: 6.0,
                min: -1.0,
                max: 4.0
            }
        );
        assert_eq!(aggregate.mean(), 2.0);
    }

    #[test]
    fn merge_equals_adding_all_values() {
        let mut left = of(&[1.0, 5.0]);
        left.merge(&of(&[-2.0, 8.0]));
        assert_eq!(left, of(&[1.0, 5.0, -2.0, 8.0]));
        left.merge(&Aggregate::EMPTY);
        assert_eq!(left, of(&[1.0, 5.0, -2.0, 8.0]));
    }

    #[test]
    fn empty_aggregate_figures() {
        let empty = Aggregate::default();
        assert!(empty.is_empty());
        assert_eq!(empty.count, 0);
        assert_eq!(empty.sum, 0.0);
        assert_eq!(empty.min, f64::INFINITY);
        assert_eq!(empty.max, f64::NEG_INFINITY);
        assert!(empty.mean().is_nan());
    }

    #[test]
    fn nan_is_counted_and_spoils_the_sum_only() {
        let aggregate = of(&[1.0, f64::NAN, 3.0]);
        assert_eq!(aggregate.count, 3);
        assert!(aggregate.sum.is_nan());
        assert_eq!((aggregate.min, aggregate.max), (1.0, 3.0));
    }
}
