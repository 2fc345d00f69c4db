//! Random graphs: acyclic ones sort, cyclic ones name a real cycle.

use super::*;

/// A random graph, described apart from the builder so the tests can check the result.
struct Random {
    names: Vec<String>,
    kinds: Vec<NodeKind>,
    /// By node: indices of its inputs.
    inputs: Vec<Vec<usize>>,
    /// Node indices in the order they are declared to the builder.
    declared: Vec<usize>,
    fan_outs: Vec<(usize, FanOut)>,
}

impl Random {
    /// A DAG: sources, then stages reading from earlier nodes, then a sink on every dead end
    /// and maybe one merging sink; declared in a shuffled order, some fan-outs declared.
    fn dag(rng: &mut fastrand::Rng) -> Self {
        let sources = rng.usize(1..=3);
        let stages = rng.usize(0..=12);
        let mut graph = Random {
            names: Vec::new(),
            kinds: Vec::new(),
            inputs: Vec::new(),
            declared: Vec::new(),
            fan_outs: Vec::new(),
        };
        for at in 0..sources + stages {
            let (kind, inputs) = if at < sources {
                (NodeKind::Source, Vec::new())
            } else {
                let mut earlier: Vec<usize> = (0..at).collect();
                rng.shuffle(&mut earlier);
                earlier.truncate(rng.usize(1..=3.min(at)));
                (NodeKind::Stage, earlier)
            };
            graph.push(format!("n{at}"), kind, inputs);
        }
        let feeding = graph.names.len();
        for at in 0..feeding {
            if graph.consumer_count(at) == 0 {
                graph.push(format!("k{at}"), NodeKind::Sink, vec![at]);
            }
        }
        if feeding >= 2 && rng.bool() {
            let mut two: Vec<usize> = (0..feeding).collect();
            rng.shuffle(&mut two);
            two.truncate(2);
            graph.push("merge".into(), NodeKind::Sink, two);
        }
        for at in 0..feeding {
            if graph.consumer_count(at) >= 2 && rng.bool() {
                let fan_out =
                    [FanOut::Broadcast, FanOut::Balance, FanOut::PartitionByKey][rng.usize(0..3)];
                graph.fan_outs.push((at, fan_out));
            }
        }
        graph.declared = (0..graph.names.len()).collect();
        rng.shuffle(&mut graph.declared);
        graph
    }

    fn push(&mut self, name: String, kind: NodeKind, inputs: Vec<usize>) {
        self.names.push(name);
        self.kinds.push(kind);
        self.inputs.push(inputs);
    }

    fn consumer_count(&self, at: usize) -> usize {
        self.inputs.iter().filter(|of| of.contains(&at)).count()
    }

    fn at(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|known| known == name)
            .expect("a name of the random graph")
    }

    fn builder(&self) -> Builder {
        let mut builder = pipeline();
        for &at in &self.declared {
            let name = self.names[at].clone();
            let inputs: Vec<&str> = self.inputs[at]
                .iter()
                .map(|&from| self.names[from].as_str())
                .collect();
            builder = match self.kinds[at] {
                NodeKind::Source => builder.source(name),
                NodeKind::Stage => builder.stage(name, inputs, "s"),
                NodeKind::Sink => builder.sink(name, inputs, "k"),
            };
        }
        for &(at, fan_out) in &self.fan_outs {
            builder = builder.fan_out(self.names[at].clone(), fan_out);
        }
        builder
    }
}

#[test]
fn random_dags_sort_every_input_first_taking_the_first_declared_ready_node() {
    for seed in 0..400 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let random = Random::dag(&mut rng);
        let graph = random
            .builder()
            .build()
            .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        let sorted: Vec<usize> = order(&graph).iter().map(|name| random.at(name)).collect();
        let mut all = sorted.clone();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..random.names.len()).collect::<Vec<_>>(),
            "seed {seed}"
        );
        // Replay the rule: each node placed is, among the unplaced nodes whose inputs are all
        // placed, the one declared first.
        let mut placed = vec![false; random.names.len()];
        for &at in &sorted {
            let first_ready = random
                .declared
                .iter()
                .copied()
                .find(|&can| !placed[can] && random.inputs[can].iter().all(|&i| placed[i]));
            assert_eq!(first_ready, Some(at), "seed {seed}");
            placed[at] = true;
        }
        for (at, name) in random.names.iter().enumerate() {
            let consumers: Vec<usize> = graph
                .consumers(name)
                .expect("every node is in the graph")
                .iter()
                .map(|consumer| random.at(consumer))
                .collect();
            let expected: Vec<usize> = random
                .declared
                .iter()
                .copied()
                .filter(|&consumer| random.inputs[consumer].contains(&at))
                .collect();
            assert_eq!(consumers, expected, "seed {seed}: consumers of {name}");
            let declared = random
                .fan_outs
                .iter()
                .find(|&&(on, _)| on == at)
                .map(|&(_, fan_out)| fan_out);
            let fan_out = match expected.len() {
                0 | 1 => None,
                _ => Some(declared.unwrap_or_default()),
            };
            assert_eq!(
                graph.fan_out(name),
                fan_out,
                "seed {seed}: fan-out of {name}"
            );
        }
    }
}

#[test]
fn random_cycles_are_named_as_real_cycles_from_their_first_declared_node() {
    let mut checked = 0;
    for seed in 0..400 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut random = Random::dag(&mut rng);
        let stages: Vec<usize> = (0..random.names.len())
            .filter(|&at| random.kinds[at] == NodeKind::Stage)
            .collect();
        if stages.is_empty() {
            continue;
        }
        // Walk down from a stage through stages, then feed the last one back into the first.
        let first = stages[rng.usize(0..stages.len())];
        let mut last = first;
        for _ in 0..rng.usize(0..4) {
            let next: Vec<usize> = stages
                .iter()
                .copied()
                .filter(|&stage| random.inputs[stage].contains(&last))
                .collect();
            if next.is_empty() {
                break;
            }
            last = next[rng.usize(0..next.len())];
        }
        random.inputs[first].push(last);
        random.fan_outs.clear();
        let Err(GraphError::Cycle { path }) = random.builder().build() else {
            panic!("seed {seed}: a cycle should be refused");
        };
        let path: Vec<usize> = path.iter().map(|name| random.at(name)).collect();
        for (k, &to) in path.iter().enumerate() {
            let from = path[(k + path.len() - 1) % path.len()];
            assert!(random.inputs[to].contains(&from), "seed {seed}: {path:?}");
            assert_eq!(
                path.iter().filter(|&&on| on == to).count(),
                1,
                "seed {seed}"
            );
        }
        let position = |at: usize| random.declared.iter().position(|&on| on == at);
        let earliest = path.iter().copied().min_by_key(|&at| position(at));
        assert_eq!(earliest, path.first().copied(), "seed {seed}: {path:?}");
        checked += 1;
    }
    assert!(checked > 300, "only {checked} graphs had a stage");
}
