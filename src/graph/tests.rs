use super::*;

mod errors;
mod random;
mod shapes;

pub(super) type Builder = PipelineBuilder<&'static str, &'static str>;

pub(super) fn pipeline() -> Builder {
    Pipeline::builder()
}

pub(super) fn refused(builder: Builder) -> GraphError {
    builder.build().expect_err("the graph should be refused")
}

pub(super) fn built(builder: Builder) -> Graph<&'static str, &'static str> {
    builder.build().expect("the graph should build")
}

pub(super) fn order<'g>(graph: &'g Graph<&'static str, &'static str>) -> Vec<&'g str> {
    graph.topological().iter().map(Node::name).collect()
}

pub(super) fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

pub(super) fn cycle(path: &[&str]) -> GraphError {
    GraphError::Cycle {
        path: strings(path),
    }
}
