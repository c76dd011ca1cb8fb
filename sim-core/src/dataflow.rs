//! Items (commands, tasks) that may start once the items they depend on are
//! done: the bookkeeping a sequencer or a host runtime keeps for a list of
//! commands with dependencies.

/// Dependency counts of a list of items, each depending on earlier ones.
#[derive(Clone, Debug, Default)]
pub struct Dataflow {
    deps_left: Vec<u32>,
    dependents: Vec<Vec<u32>>,
    done: usize,
}

impl Dataflow {
    /// The items' dependencies, by index, one slice per item.
    pub fn new<'a>(deps: impl IntoIterator<Item = &'a [u32]>) -> Dataflow {
        let mut flow = Dataflow::default();
        for (i, deps) in deps.into_iter().enumerate() {
            flow.deps_left.push(deps.len() as u32);
            flow.dependents.push(Vec::new());
            for &d in deps {
                flow.dependents[d as usize].push(i as u32);
            }
        }
        flow
    }

    /// Items with nothing to wait for, in index order.
    pub fn ready(&self) -> Vec<u32> {
        (0..self.deps_left.len() as u32).filter(|&i| self.deps_left[i as usize] == 0).collect()
    }

    /// Mark item `i` done; returns the items it made ready, in the order they depend on it.
    pub fn complete(&mut self, i: u32) -> Vec<u32> {
        self.done += 1;
        let mut ready = Vec::new();
        for &d in &self.dependents[i as usize] {
            self.deps_left[d as usize] -= 1;
            if self.deps_left[d as usize] == 0 {
                ready.push(d);
            }
        }
        ready
    }

    /// Whether every item is done.
    pub fn finished(&self) -> bool {
        self.done == self.deps_left.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_ready_when_their_dependencies_are_done() {
        let deps: [&[u32]; 4] = [&[], &[0], &[0], &[1, 2]];
        let mut flow = Dataflow::new(deps);
        assert_eq!(flow.ready(), vec![0]);
        assert_eq!(flow.complete(0), vec![1, 2]);
        assert_eq!(flow.complete(2), Vec::<u32>::new());
        assert_eq!(flow.complete(1), vec![3]);
        assert!(!flow.finished());
        flow.complete(3);
        assert!(flow.finished());
    }
}
