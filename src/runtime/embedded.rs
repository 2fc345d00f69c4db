//! The embedded broker: rdkafka's in-process mock cluster, for running a pipeline with no setup.
//! In memory only. It lives on a thread of its own (the mock cluster must stay where it was made).

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

/// A running embedded broker.
pub struct EmbeddedBroker {
    bootstrap: String,
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster with `topics` (name, partitions).
    pub fn start(topics: &[(String, i32)]) -> Result<Self, String> {
        let topics = topics.to_vec();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-broker".to_owned())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(error) => {
                        let _ = ready_tx.send(Err(format!("embedded broker: {error}")));
                        return;
                    }
                };
                for (topic, partitions) in &topics {
                    if let Err(error) = cluster.create_topic(topic, *partitions, 1) {
                        let _ =
                            ready_tx.send(Err(format!("embedded broker: topic {topic}: {error}")));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                let _ = stopped.recv();
            })
            .map_err(|error| format!("embedded broker thread: {error}"))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| "the embedded broker thread ended before it was ready".to_owned())??;
        Ok(EmbeddedBroker {
            bootstrap,
            stop,
            thread: Some(thread),
        })
    }

    /// `bootstrap.servers` for it.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Stops it (and everything in it is gone).
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.shut();
    }
}
