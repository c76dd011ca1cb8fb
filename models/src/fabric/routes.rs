//! The graph of links between endpoints (devices and hosts) and the routes
//! through it: for every pair, the path of least zero-load time for one
//! fabric chunk (latency plus serialisation at each hop), ties broken by the
//! order links were added, so routes are the same on every run.

use serde::{Deserialize, Serialize};
use sim_core::{ComponentId, Time};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// Where a transfer starts or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// A chiplet, by its index in the whole system.
    Device(u32),
    /// The host CPU of a node.
    Host(u32),
}

/// The links a transfer crosses and the component it is delivered to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub links: Vec<ComponentId>,
    pub dest: ComponentId,
    /// Sum of the links' latencies.
    pub latency: Time,
}

#[derive(Clone, Copy, Debug)]
struct Edge {
    from: usize,
    to: usize,
    link: ComponentId,
    latency: Time,
    cost: u64,
}

/// Collects the vertices and links of the fabric.
#[derive(Debug, Default)]
pub struct RoutesBuilder {
    vertices: usize,
    endpoints: Vec<(Endpoint, usize, ComponentId)>,
    edges: Vec<Edge>,
}

impl RoutesBuilder {
    /// A switch or other point that is not an endpoint.
    pub fn vertex(&mut self) -> usize {
        self.vertices += 1;
        self.vertices - 1
    }

    /// An endpoint, delivered to `component`.
    pub fn endpoint(&mut self, endpoint: Endpoint, component: ComponentId) -> usize {
        let v = self.vertex();
        self.endpoints.push((endpoint, v, component));
        v
    }

    /// A one-direction link from `from` to `to`; `chunk_time` is the time one
    /// fabric chunk takes to cross it.
    pub fn link(&mut self, from: usize, to: usize, link: ComponentId, latency: Time, chunk_time: Time) {
        self.edges.push(Edge { from, to, link, latency, cost: (latency + chunk_time).as_ps() });
    }

    pub fn build(self) -> Routes {
        let mut out: HashMap<(Endpoint, Endpoint), Arc<Route>> = HashMap::new();
        let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); self.vertices];
        for (i, e) in self.edges.iter().enumerate() {
            adjacency[e.from].push(i);
        }
        for &(src, src_v, _) in &self.endpoints {
            let previous = self.shortest_paths(src_v, &adjacency);
            for &(dst, dst_v, component) in &self.endpoints {
                if src == dst {
                    continue;
                }
                let mut links = Vec::new();
                let mut latency = Time::ZERO;
                let mut v = dst_v;
                let mut reachable = true;
                while v != src_v {
                    let Some(e) = previous[v] else {
                        reachable = false;
                        break;
                    };
                    links.push(self.edges[e].link);
                    latency += self.edges[e].latency;
                    v = self.edges[e].from;
                }
                if reachable {
                    links.reverse();
                    out.insert((src, dst), Arc::new(Route { links, dest: component, latency }));
                }
            }
        }
        let deliver = self.endpoints.iter().map(|&(e, _, c)| (e, c)).collect();
        Routes { routes: out, deliver }
    }

    /// Dijkstra from `src`; for each vertex, the edge that reaches it.
    fn shortest_paths(&self, src: usize, adjacency: &[Vec<usize>]) -> Vec<Option<usize>> {
        let mut dist = vec![u64::MAX; self.vertices];
        let mut previous = vec![None; self.vertices];
        let mut heap = BinaryHeap::new();
        dist[src] = 0;
        heap.push(Reverse((0u64, src)));
        while let Some(Reverse((d, v))) = heap.pop() {
            if d > dist[v] {
                continue;
            }
            for &e in &adjacency[v] {
                let edge = &self.edges[e];
                let nd = d + edge.cost;
                if nd < dist[edge.to] {
                    dist[edge.to] = nd;
                    previous[edge.to] = Some(e);
                    heap.push(Reverse((nd, edge.to)));
                }
            }
        }
        previous
    }
}

/// Routes between every pair of endpoints.
#[derive(Debug, Clone)]
pub struct Routes {
    routes: HashMap<(Endpoint, Endpoint), Arc<Route>>,
    deliver: HashMap<Endpoint, ComponentId>,
}

impl Routes {
    /// The route from one endpoint to another; `None` if they are the same or unconnected.
    pub fn get(&self, from: Endpoint, to: Endpoint) -> Option<&Arc<Route>> {
        self.routes.get(&(from, to))
    }
    /// The component that receives transfers addressed to `endpoint`.
    pub fn receiver(&self, endpoint: Endpoint) -> Option<ComponentId> {
        self.deliver.get(&endpoint).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_faster_path_and_is_directional() {
        let id = ComponentId::from_index;
        let mut b = RoutesBuilder::default();
        let a = b.endpoint(Endpoint::Device(0), id(100));
        let c = b.endpoint(Endpoint::Device(1), id(101));
        let switch = b.vertex();
        // Direct but slow, or via a switch and fast.
        b.link(a, c, id(1), Time::from_ns(100), Time::from_ns(1000));
        b.link(a, switch, id(2), Time::from_ns(50), Time::from_ns(10));
        b.link(switch, c, id(3), Time::from_ns(50), Time::from_ns(10));
        b.link(c, a, id(4), Time::from_ns(100), Time::from_ns(1000));
        let routes = b.build();
        let there = routes.get(Endpoint::Device(0), Endpoint::Device(1)).unwrap();
        assert_eq!(there.links, [id(2), id(3)]);
        assert_eq!(there.dest, id(101));
        assert_eq!(there.latency, Time::from_ns(100));
        assert_eq!(routes.get(Endpoint::Device(1), Endpoint::Device(0)).unwrap().links, [id(4)]);
    }
}
