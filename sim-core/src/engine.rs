//! Components, the context they act through, the builder that wires them, and
//! the frozen system that runs them.

use crate::queue::{DEFAULT_PRIORITY, EventQueue, Priority};
use crate::stats::Stats;
use crate::time::Time;
use std::any::Any;
use std::fmt;

/// The address of a component inside one system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId(u32);

impl ComponentId {
    pub const fn from_index(index: u32) -> ComponentId {
        ComponentId(index)
    }
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A simulated component: it owns its state and reacts to the messages sent to it.
///
/// `M` is the message type of the whole system (an enum defined by the crate
/// that assembles components). A component reaches others only by sending
/// messages through its [`Ctx`]; it never holds references to them.
pub trait Component<M>: Any {
    /// The class of component, used to group statistics: `"npu.core"`, `"link.pcie"`.
    fn kind(&self) -> &'static str;

    /// React to one message at the current simulated time.
    fn handle(&mut self, msg: M, ctx: &mut Ctx<'_, M>);

    /// Statistics at the end of a run. `now` is the final simulated time, so
    /// busy time that was booked past it can be clipped.
    fn stats(&self, now: Time) -> Stats {
        let _ = now;
        Stats::default()
    }
}

/// What a component may do while handling a message.
pub struct Ctx<'a, M> {
    now: Time,
    me: ComponentId,
    queue: &'a mut EventQueue<M>,
    stop: &'a mut bool,
}

impl<M> fmt::Debug for Ctx<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("now", &self.now).field("me", &self.me).finish()
    }
}

impl<M> Ctx<'_, M> {
    pub fn now(&self) -> Time {
        self.now
    }
    /// The component handling the message.
    pub fn me(&self) -> ComponentId {
        self.me
    }
    /// Deliver `msg` to `to` after `delay`.
    pub fn send(&mut self, to: ComponentId, delay: Time, msg: M) {
        self.queue.push(self.now + delay, DEFAULT_PRIORITY, to, msg);
    }
    /// Deliver `msg` to `to` at an absolute time, which must not be in the past.
    pub fn send_at(&mut self, to: ComponentId, at: Time, msg: M) {
        assert!(at >= self.now, "event scheduled in the past");
        self.queue.push(at, DEFAULT_PRIORITY, to, msg);
    }
    /// Like [`Ctx::send_at`] with an explicit same-time priority (lower runs first).
    pub fn send_at_priority(&mut self, to: ComponentId, at: Time, priority: Priority, msg: M) {
        assert!(at >= self.now, "event scheduled in the past");
        self.queue.push(at, priority, to, msg);
    }
    /// Deliver `msg` back to this component after `delay`.
    pub fn wake_me(&mut self, delay: Time, msg: M) {
        let me = self.me;
        self.send(me, delay, msg);
    }
    /// Stop the run after this message; the queue keeps its pending events.
    pub fn stop(&mut self) {
        *self.stop = true;
    }
}

/// An error found while wiring a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// A slot was reserved (so others may address it) but no component was placed in it.
    Unplaced { path: String },
    /// A component was placed twice in the same slot.
    PlacedTwice { path: String },
    /// Two components share a path.
    DuplicatePath { path: String },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Unplaced { path } => {
                write!(f, "component `{path}` was reserved and addressed but never placed")
            }
            BuildError::PlacedTwice { path } => write!(f, "component `{path}` was placed twice"),
            BuildError::DuplicatePath { path } => write!(f, "two components share the path `{path}`"),
        }
    }
}

impl std::error::Error for BuildError {}

struct Slot<M> {
    path: String,
    component: Option<Box<dyn Component<M>>>,
}

/// Wires components into a system, then freezes it with [`SystemBuilder::build`].
///
/// Components that address each other are created in two steps: `reserve` a
/// slot to learn its id, hand that id to whoever sends to it, then `place` the
/// component. `build` refuses a slot left empty, so every address a component
/// holds refers to something.
pub struct SystemBuilder<M> {
    slots: Vec<Slot<M>>,
    initial: Vec<(Time, ComponentId, M)>,
}

impl<M> Default for SystemBuilder<M> {
    fn default() -> Self {
        SystemBuilder { slots: Vec::new(), initial: Vec::new() }
    }
}

impl<M> fmt::Debug for SystemBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemBuilder").field("slots", &self.slots.len()).finish()
    }
}

impl<M: 'static> SystemBuilder<M> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserve an id for a component that will be placed later.
    pub fn reserve(&mut self, path: impl Into<String>) -> ComponentId {
        let id = ComponentId(u32::try_from(self.slots.len()).expect("more than 2^32 components"));
        self.slots.push(Slot { path: path.into(), component: None });
        id
    }

    /// Put a component into a reserved slot.
    pub fn place(&mut self, id: ComponentId, component: impl Component<M>) -> Result<(), BuildError> {
        let slot = &mut self.slots[id.index()];
        if slot.component.is_some() {
            return Err(BuildError::PlacedTwice { path: slot.path.clone() });
        }
        slot.component = Some(Box::new(component));
        Ok(())
    }

    /// Reserve and place in one step, for components nobody needs to address in advance.
    pub fn add(&mut self, path: impl Into<String>, component: impl Component<M>) -> ComponentId {
        let id = self.reserve(path);
        self.slots[id.index()].component = Some(Box::new(component));
        id
    }

    /// An event delivered when the system starts running.
    pub fn post(&mut self, at: Time, to: ComponentId, msg: M) {
        self.initial.push((at, to, msg));
    }

    pub fn path(&self, id: ComponentId) -> &str {
        &self.slots[id.index()].path
    }

    /// Check the wiring and freeze the system.
    pub fn build(self) -> Result<System<M>, BuildError> {
        let mut seen = std::collections::HashSet::new();
        let mut components = Vec::with_capacity(self.slots.len());
        let mut paths = Vec::with_capacity(self.slots.len());
        for slot in self.slots {
            if !seen.insert(slot.path.clone()) {
                return Err(BuildError::DuplicatePath { path: slot.path });
            }
            let component = slot.component.ok_or_else(|| BuildError::Unplaced { path: slot.path.clone() })?;
            components.push(component);
            paths.push(slot.path);
        }
        let mut queue = EventQueue::new();
        for (at, to, msg) in self.initial {
            queue.push(at, DEFAULT_PRIORITY, to, msg);
        }
        Ok(System { components, paths, queue, now: Time::ZERO, events: 0 })
    }
}

/// Why a call to [`System::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// No events are left.
    Idle,
    /// A component asked to stop.
    Stopped,
    /// The next event lies beyond the time limit.
    LimitReached,
}

/// Statistics of one component, with its path and kind.
#[derive(Debug, Clone)]
pub struct ComponentStats {
    pub path: String,
    pub kind: &'static str,
    pub stats: Stats,
}

/// A frozen, runnable system. One system runs on one thread; run many systems
/// in parallel for parallelism.
pub struct System<M> {
    components: Vec<Box<dyn Component<M>>>,
    paths: Vec<String>,
    queue: EventQueue<M>,
    now: Time,
    events: u64,
}

impl<M> fmt::Debug for System<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System")
            .field("components", &self.components.len())
            .field("now", &self.now)
            .field("events", &self.events)
            .field("pending", &self.queue.len())
            .finish()
    }
}

impl<M: 'static> System<M> {
    pub fn now(&self) -> Time {
        self.now
    }
    /// Events handled so far.
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
    pub fn next_event_time(&self) -> Option<Time> {
        self.queue.next_time()
    }

    /// Deliver `msg` to `to` at `at` (not before the current time).
    pub fn post(&mut self, at: Time, to: ComponentId, msg: M) {
        assert!(at >= self.now, "event posted in the past");
        self.queue.push(at, DEFAULT_PRIORITY, to, msg);
    }

    /// Handle events in order until none is left, one asks to stop, or the next
    /// lies after `limit`.
    ///
    /// Under [`limits::within`](crate::limits::within), passing one of its
    /// limits ends the work there.
    pub fn run(&mut self, limit: Time) -> RunOutcome {
        let mut stop = false;
        let bounds = crate::limits::current();
        loop {
            let Some((at, target, msg)) = self.queue.pop_due(limit) else {
                return if self.queue.len() == 0 { RunOutcome::Idle } else { RunOutcome::LimitReached };
            };
            if let Some(bounds) = &bounds {
                bounds.check(self.events, at, self.now);
            }
            self.now = at;
            self.events += 1;
            let mut ctx = Ctx { now: at, me: target, queue: &mut self.queue, stop: &mut stop };
            self.components[target.index()].handle(msg, &mut ctx);
            if stop {
                return RunOutcome::Stopped;
            }
        }
    }

    /// Run until nothing is left or a component stops the run.
    pub fn run_to_end(&mut self) -> RunOutcome {
        self.run(Time::MAX)
    }

    pub fn path(&self, id: ComponentId) -> &str {
        &self.paths[id.index()]
    }

    /// Typed read access to a component, for collecting results after a run.
    pub fn get<T: Component<M>>(&self, id: ComponentId) -> Option<&T> {
        let component: &dyn Any = self.components.get(id.index())?.as_ref();
        component.downcast_ref::<T>()
    }

    /// Typed write access to a component between runs, for a driver that
    /// steers the simulation from outside (the run is stopped, no event is
    /// being handled).
    pub fn get_mut<T: Component<M>>(&mut self, id: ComponentId) -> Option<&mut T> {
        let component: &mut dyn Any = self.components.get_mut(id.index())?.as_mut();
        component.downcast_mut::<T>()
    }

    /// Every component's statistics, in the order components were added.
    pub fn stats(&self) -> Vec<ComponentStats> {
        self.components
            .iter()
            .zip(&self.paths)
            .map(|(c, path)| ComponentStats { path: path.clone(), kind: c.kind(), stats: c.stats(self.now) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounces a counter back and forth with a peer until it reaches a limit.
    struct Ping {
        peer: ComponentId,
        seen: Vec<(Time, u32)>,
    }

    impl Component<u32> for Ping {
        fn kind(&self) -> &'static str {
            "test.ping"
        }
        fn handle(&mut self, n: u32, ctx: &mut Ctx<'_, u32>) {
            self.seen.push((ctx.now(), n));
            if n < 5 {
                ctx.send(self.peer, Time::from_ns(3), n + 1);
            }
        }
    }

    fn ping_pair() -> (System<u32>, ComponentId, ComponentId) {
        let mut b = SystemBuilder::new();
        let a = b.reserve("a");
        let c = b.reserve("b");
        b.place(a, Ping { peer: c, seen: vec![] }).unwrap();
        b.place(c, Ping { peer: a, seen: vec![] }).unwrap();
        b.post(Time::ZERO, a, 0);
        (b.build().unwrap(), a, c)
    }

    #[test]
    fn messages_arrive_after_their_delay() {
        let (mut sys, a, c) = ping_pair();
        assert_eq!(sys.run_to_end(), RunOutcome::Idle);
        assert_eq!(sys.events(), 6);
        assert_eq!(sys.now(), Time::from_ns(15));
        let a = sys.get::<Ping>(a).unwrap();
        let c = sys.get::<Ping>(c).unwrap();
        assert_eq!(a.seen, [(Time::ZERO, 0), (Time::from_ns(6), 2), (Time::from_ns(12), 4)]);
        assert_eq!(c.seen, [(Time::from_ns(3), 1), (Time::from_ns(9), 3), (Time::from_ns(15), 5)]);
    }

    #[test]
    fn a_time_limit_pauses_and_resumes() {
        let (mut sys, _, _) = ping_pair();
        assert_eq!(sys.run(Time::from_ns(7)), RunOutcome::LimitReached);
        assert_eq!(sys.events(), 3);
        assert_eq!(sys.run_to_end(), RunOutcome::Idle);
        assert_eq!(sys.events(), 6);
    }

    #[test]
    fn an_unplaced_slot_is_refused() {
        let mut b: SystemBuilder<u32> = SystemBuilder::new();
        b.reserve("ghost");
        assert_eq!(b.build().unwrap_err(), BuildError::Unplaced { path: "ghost".into() });
    }

    #[test]
    fn duplicate_paths_are_refused() {
        let mut b: SystemBuilder<u32> = SystemBuilder::new();
        let x = b.reserve("x");
        b.place(x, Ping { peer: x, seen: vec![] }).unwrap();
        let y = b.reserve("x");
        b.place(y, Ping { peer: x, seen: vec![] }).unwrap();
        assert!(matches!(b.build(), Err(BuildError::DuplicatePath { .. })));
    }
}
