//! Kernel replay: a chiplet's compute command simulated once, on a chiplet of
//! its own, and its outcome replayed wherever the same work recurs.
//!
//! A model step repeats the same kernels many times: the same projections in
//! every layer, the same expert GEMM shapes on many chiplets. The first time a
//! sequencer meets a command whose work it has not seen, the memo runs it on a
//! fresh single-chiplet system (the same cores, network and memory models,
//! from idle) and records how long it took and what every component counted.
//! Wherever that work recurs, the sequencer waits that long and hands each
//! component its recorded statistics to add to its own, instead of running
//! the cores. Work is the same when the lowering gives it the same key.
//!
//! What replay leaves out: the state the hardware was in (a command always
//! starts from idle memory and network, and from the refresh schedule's
//! start), and overlap between commands on one chiplet, which run one after
//! another. Latency distributions cover only what was simulated in place.

use super::PreparedProgram;
use super::commands::{CommandKind, CommandList};
use crate::machine::{self, Options};
use crate::msg::Msg;
use crate::spec::ChipletSpec;
use sim_core::{Component, ComponentId, Ctx, Recorder, Recording, SystemBuilder, Time};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a command did when simulated on its own.
#[derive(Debug)]
pub struct Recorded {
    pub duration: Time,
    /// Per core index of the chiplet, the core's statistics (for cores that ran).
    pub cores: Vec<(u32, Arc<Recording>)>,
    pub memory: Arc<Recording>,
    pub shared: Arc<Recording>,
    pub network: Arc<Recording>,
}

/// Records of commands by key, shared by the sequencers of one system.
#[derive(Debug)]
pub struct ComputeMemo {
    chiplet: ChipletSpec,
    options: Options,
    records: Mutex<HashMap<u64, Arc<Recorded>>>,
    recorder: Mutex<Recorder>,
}

impl ComputeMemo {
    /// A memo for chiplets like `chiplet`, modelled with `options`.
    pub fn new(chiplet: &ChipletSpec, options: Options) -> ComputeMemo {
        ComputeMemo {
            chiplet: chiplet.clone(),
            options,
            records: Mutex::new(HashMap::new()),
            recorder: Mutex::new(Recorder::default()),
        }
    }

    /// The record of the work `key`, simulating `programs` if it is new.
    pub fn record(&self, key: u64, programs: &[(u32, Arc<PreparedProgram>)]) -> Arc<Recorded> {
        if let Some(r) = self.records.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Arc::clone(r);
        }
        let recorded = Arc::new(self.simulate(programs));
        self.records.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Arc::clone(&recorded));
        recorded
    }

    /// The record of the work `key`, if it was simulated.
    pub fn get(&self, key: u64) -> Option<Arc<Recorded>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned()
    }

    /// Distinct commands simulated so far.
    pub fn len(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn simulate(&self, programs: &[(u32, Arc<PreparedProgram>)]) -> Recorded {
        let mut builder: SystemBuilder<Msg> = SystemBuilder::new();
        let launcher = builder.reserve("launcher");
        let device = machine::build_chiplet(&self.chiplet, &mut builder, self.options);
        let mut list = CommandList::default();
        list.push(vec![], CommandKind::Compute { programs: programs.to_vec(), memo: None });
        let launch = Launcher { sequencer: device.sequencer, list: Some(Arc::new(list)), done: None };
        builder.place(launcher, launch).expect("the launcher slot is placed once");
        builder.post(Time::ZERO, launcher, Msg::Wake { token: 0 });
        let mut system = builder.build().expect("a chiplet's components are all placed");
        system.run_to_end();
        let duration = system.get::<Launcher>(launcher).and_then(|l| l.done).unwrap_or(system.now());
        let stats = system.stats();
        let mut recorder = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        let mut of = |id: ComponentId| Arc::new(recorder.record(&stats[id.index()].stats));
        Recorded {
            duration,
            cores: programs.iter().map(|(c, _)| (*c, of(device.cores[*c as usize]))).collect(),
            memory: of(device.memory),
            shared: of(device.shared),
            network: of(device.network),
        }
    }
}

/// Posts one command list and notes when it is done.
#[derive(Debug)]
struct Launcher {
    sequencer: ComponentId,
    list: Option<Arc<CommandList>>,
    done: Option<Time>,
}

impl Component<Msg> for Launcher {
    fn kind(&self) -> &'static str {
        "host.launcher"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Wake { .. } => {
                if let Some(list) = self.list.take() {
                    ctx.send(self.sequencer, Time::ZERO, Msg::RunCommands { list, reply_to: ctx.me(), token: 0 });
                }
            }
            Msg::Done { .. } => self.done = Some(ctx.now()),
            _ => {}
        }
    }
}
