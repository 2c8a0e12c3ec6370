//! The detector: indicators in real time from sampler observations, and full scoring
//! (indicators, baseline, model) when an invocation's record is assembled.

use std::collections::VecDeque;
use std::sync::Arc;

use super::baseline::{Baseline, BaselineProfile, ProfileError};
use super::burst::ErrorBursts;
use super::contacts::EarlyContacts;
use super::cost::Costs;
use super::explain;
use super::indicators::{Familiar, Habit, Tracker};
use super::memory::MemoryCarry;
use super::responses::ResponseSizes;
use super::score::{
    assess, class_features, model_trust, severity, Assessment, Weighted, DEFAULT_THRESHOLD,
};
use crate::features::{idx, raw_values, transform, N, VECTOR_VERSION};
use crate::health::{Counter, Health};
use crate::model::{ModelOutput, Scorer};
use crate::redact;
use crate::schema::Observation;
use crate::schema::{
    BaselineView, Class, Finding, Indicator, ModelView, Severity, FINDING_VERSION,
};
use crate::schema::{FeatureRecord, RecordKind, Status, SCHEMA_VERSION};
use warden_policy::lockdown::Known;

/// Invocations whose real-time state is kept (records can lag behind by a few).
const MAX_LIVE: usize = 16;
/// The shells a function that runs shell commands by habit keeps under a lockdown.
const LOCKDOWN_SHELLS: [&str; 3] = ["sh", "dash", "bash"];
/// An environment without a profile is learning its function's habits for this many
/// invocations: until then, findings without a hard indicator are low severity and
/// summarised, one per new habit (docs/detection.md, "Learning period").
pub const LEARNING_INVOCATIONS: u64 = 20;
/// Most habits remembered as already reported during the learning period.
const MAX_REPORTED: usize = 512;
/// Share of the alert threshold from which the baseline part backs a model verdict, so that
/// the verdict is not the model's alone.
const SUPPORTING_BASELINE: f32 = 0.5;
/// Most evidence items in one finding.
const MAX_FINDING_EVIDENCE: usize = 8;
/// Detector settings.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// Alert threshold on the combined score.
    pub threshold: f32,
    /// Function name.
    pub function_name: String,
    /// Function version.
    pub function_version: String,
    /// Scratch directory with a trailing `/`.
    pub tmp_prefix: String,
    /// Executables the function is known to run (paths or base names).
    pub known_exes: Vec<String>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threshold: DEFAULT_THRESHOLD,
            function_name: String::new(),
            function_version: String::new(),
            tmp_prefix: "/tmp/".into(),
            known_exes: Vec::new(),
        }
    }
}

/// Real-time state of one invocation.
struct Live {
    request_id: String,
    tracker: Tracker,
    emitted: Vec<Indicator>,
    finding_ids: Vec<String>,
    classes: Vec<crate::schema::Class>,
}

/// The earlier invocations of a beacon's run, when `tracker` found one (other than
/// `current`): the first of them is where it was planted.
fn beacon_contacts(
    contacts: &mut EarlyContacts,
    familiar: &mut Familiar,
    tracker: &Tracker,
    current: Option<&str>,
) -> Vec<String> {
    let Some(hit) = tracker
        .hits
        .iter()
        .find(|h| h.indicator == Indicator::Beaconing)
    else {
        return Vec::new();
    };
    Habit::of(&hit.evidence)
        .into_iter()
        .filter_map(|h| match h {
            Habit::Destination(addr) => Some(addr),
            _ => None,
        })
        .flat_map(|addr| {
            // The invocation whose thread outlived it, right before the first contact: where
            // the beacon was planted.
            let planted = familiar.take_thread_rise_before(&addr, current);
            planted.into_iter().chain(contacts.take(&addr, current))
        })
        .collect()
}

/// Share of an invocation's duration spent on the CPU from which it was busy all the while.
const BUSY_SHARE: f64 = 0.8;

/// An invocation that timed out busy on the CPU (see [`Indicator::BurnedToTimeout`]).
fn burned_to_timeout(r: &FeatureRecord) -> bool {
    let cpu_ms = (r.counters.cpu_user_ms + r.counters.cpu_system_ms) as f64;
    let p = &r.platform;
    let duration_ms = p.duration_ms.or(p.runtime_duration_ms).unwrap_or(0.0);
    r.status == Status::Timeout && duration_ms > 0.0 && cpu_ms >= BUSY_SHARE * duration_ms
}

/// The live state of `request_id`, created if new (the oldest is dropped beyond
/// [`MAX_LIVE`]).
fn live_entry<'a>(live: &'a mut VecDeque<Live>, request_id: &str) -> &'a mut Live {
    if let Some(p) = live.iter().position(|l| l.request_id == request_id) {
        return &mut live[p];
    }
    if live.len() >= MAX_LIVE {
        live.pop_front();
    }
    live.push_back(Live {
        request_id: request_id.to_string(),
        tracker: Tracker::default(),
        emitted: Vec::new(),
        finding_ids: Vec::new(),
        classes: Vec::new(),
    });
    let last = live.len() - 1;
    &mut live[last]
}

/// How the last invocation record was scored (for evaluation and debugging).
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Score, class and the parts behind them.
    pub assessment: Assessment,
    /// Indicators that fired.
    pub indicators: Vec<Indicator>,
    /// The baseline's z-scores.
    pub z: [f32; N],
}

/// See the module docs.
pub struct Detector {
    cfg: DetectorConfig,
    baseline: Baseline,
    familiar: Familiar,
    scorer: Option<Arc<dyn Scorer>>,
    health: Arc<Health>,
    live: VecDeque<Live>,
    id_base: String,
    next_id: u64,
    last_score: Option<f32>,
    last_verdict: Option<Verdict>,
    /// The last invocations' errors, for probing bursts.
    bursts: ErrorBursts,
    /// Memory figures of the last invocation, to tell who raised them.
    memory: MemoryCarry,
    /// Invocation records scored in this environment.
    scored: u64,
    /// A profile seeded the detector: no learning period.
    profiled: bool,
    /// Habits already reported during the learning period (each is reported once).
    reported: std::collections::HashSet<Habit>,
    /// Classes the generic model named in findings of the learning period (its vote is news
    /// once per class).
    model_classes: std::collections::HashSet<Class>,
    /// Invocations that contacted a destination not yet familiar, for a beacon's finding.
    early_contacts: EarlyContacts,
    /// The responses the environment returned, for oversized ones.
    responses: ResponseSizes,
    /// The costliest clean invocation (denial of wallet without an indicator).
    costs: Costs,
}

impl Detector {
    /// A detector with an empty baseline and no model.
    pub fn new(cfg: DetectorConfig, health: Arc<Health>, now_ms: u64) -> Detector {
        let mut familiar = Familiar::default();
        for exe in &cfg.known_exes {
            familiar.add_exe(exe);
        }
        Detector {
            cfg,
            baseline: Baseline::new(),
            familiar,
            scorer: None,
            health,
            live: VecDeque::with_capacity(MAX_LIVE),
            id_base: format!("wf-{now_ms:x}-{:x}", std::process::id()),
            next_id: 1,
            last_score: None,
            last_verdict: None,
            bursts: ErrorBursts::default(),
            memory: MemoryCarry::default(),
            scored: 0,
            profiled: false,
            reported: std::collections::HashSet::new(),
            model_classes: std::collections::HashSet::new(),
            early_contacts: EarlyContacts::default(),
            responses: ResponseSizes::default(),
            costs: Costs::default(),
        }
    }

    /// Remembers habits as reported during the learning period (see `was_reported`).
    fn note_reported(&mut self, habits: &[Habit]) {
        for h in habits {
            if self.reported.len() < MAX_REPORTED {
                self.reported.insert(h.clone());
            }
        }
    }

    /// Whether a habit was reported during the learning period. A shell caught without its
    /// command line is the same news as any shell command reported before.
    fn was_reported(&self, habit: &Habit) -> bool {
        match habit {
            Habit::Shell(shape) if shape.is_empty() => {
                self.reported.iter().any(|h| matches!(h, Habit::Shell(_)))
            }
            other => self.reported.contains(other),
        }
    }

    /// Whether the environment is still learning its function's habits: no profile, and
    /// fewer than [`LEARNING_INVOCATIONS`] invocations scored.
    pub fn learning(&self) -> bool {
        !self.profiled && self.scored < LEARNING_INVOCATIONS
    }

    /// Uses a model for scoring (none: baseline and rules alone).
    pub fn with_scorer(mut self, scorer: Option<Arc<dyn Scorer>>) -> Detector {
        self.scorer = scorer;
        self
    }

    /// Seeds the baseline from a profile trained offline.
    pub fn with_profile(mut self, profile: &BaselineProfile) -> Result<Detector, ProfileError> {
        self.baseline = Baseline::from_profile(profile)?;
        self.responses = ResponseSizes::from_baseline(&self.baseline);
        self.costs = Costs::from_baseline(&self.baseline);
        for exe in &profile.known_exes {
            self.familiar.add_exe(exe);
        }
        for shape in &profile.shell_shapes {
            self.familiar.add_shell_shape(shape);
        }
        self.profiled = true;
        Ok(self)
    }

    /// The baseline (for inspection and `learn` tooling).
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// One sampler observation during invocation `request_id`: a real-time finding when an
    /// indicator strong enough on its own fires for the first time in the invocation.
    pub fn observe(
        &mut self,
        request_id: Option<&str>,
        obs: &Observation,
        now_ms: u64,
    ) -> Option<Finding> {
        let request_id = request_id?;
        let (threshold, warmed) = (self.cfg.threshold, self.baseline.warmed_up());
        let learning = self.learning();
        let live = live_entry(&mut self.live, request_id);
        let fired = live.tracker.feed(obs, &self.familiar, &self.cfg.tmp_prefix);
        // While the environment learns, only hard indicators are worth a real-time alert:
        // the rest is summarised from the record, once per new habit.
        let strong: Vec<Indicator> = fired
            .into_iter()
            .filter(|i| i.weight(warmed) >= threshold && !live.emitted.contains(i))
            .filter(|i| i.is_hard() || !learning)
            .collect();
        if strong.is_empty() {
            return None;
        }
        live.emitted.extend(&strong);
        let hits = weighted(&live.tracker, warmed);
        let evidence: Vec<Observation> = live
            .tracker
            .hits
            .iter()
            .filter(|h| strong.contains(&h.indicator))
            .flat_map(|h| h.evidence.iter())
            .fold(Vec::new(), |mut out: Vec<Observation>, e| {
                if out.len() < MAX_FINDING_EVIDENCE && !out.contains(e) {
                    out.push(e.clone());
                }
                out
            });
        let indicators = live.tracker.hits.iter().map(|h| h.indicator).collect();
        let counts = indicator_counts(&live.tracker);
        let related = live.finding_ids.clone();
        let a = assess(&hits, &[0.0; N], None, threshold);
        let earlier_requests = if strong.contains(&Indicator::Beaconing) {
            beacon_contacts(
                &mut self.early_contacts,
                &mut self.familiar,
                &live.tracker,
                Some(request_id),
            )
        } else {
            Vec::new()
        };
        let id = format!("{}-{}", self.id_base, self.next_id);
        self.next_id += 1;
        live.finding_ids.push(id.clone());
        live.classes.push(a.class);
        let mut explanation = explain::realtime(&a, &counts, &self.baseline);
        explain::name_unfeatured(&mut explanation, &live.tracker, None);
        let parts = Parts {
            id,
            now_ms,
            request_id: Some(request_id),
            realtime: true,
            quiet: false,
            indicators,
            explanation,
            evidence,
            model: None,
            related,
            earlier_requests,
        };
        Some(self.finding(&a, parts))
    }

    /// Notes the invocation's contacts with destinations not familiar yet (or still watched
    /// for a cadence), and stops following those that became habits.
    fn note_early_contacts(&mut self, r: &FeatureRecord) {
        let Some(request_id) = r.request_id.as_deref() else {
            return;
        };
        let invocation = self.scored;
        for habit in Habit::of(&r.evidence) {
            let Habit::Destination(addr) = habit else {
                continue;
            };
            if self.familiar.knows(&habit) && !self.familiar.is_candidate(&habit) {
                self.early_contacts.forget(&addr);
            } else {
                self.early_contacts.note(addr, invocation, request_id);
            }
        }
    }

    /// What the function is known to do, for a lockdown (`respond::lockdown`): its familiar
    /// destinations and programs and, when it runs shell commands by habit, the shells (their
    /// commands are still judged by shape here; the guard can only tell programs apart).
    pub fn lockdown_known(&self) -> Known {
        let mut known = Known::default();
        for addr in self.familiar.destinations() {
            known.add_destination(addr);
        }
        let shells = LOCKDOWN_SHELLS
            .iter()
            .filter(|_| self.familiar.runs_shells());
        for exe in self
            .familiar
            .exes()
            .iter()
            .map(String::as_str)
            .chain(shells.copied())
        {
            known.add_program(exe);
        }
        known
    }

    /// The combined score of the last invocation record scored (none for init records).
    pub fn last_score(&self) -> Option<f32> {
        self.last_score
    }

    /// How the last invocation record was scored (none for init records).
    pub fn last_verdict(&self) -> Option<&Verdict> {
        self.last_verdict.as_ref()
    }

    /// A finished record: full scoring; learns it when it raised nothing.
    pub fn record(&mut self, r: &FeatureRecord, now_ms: u64) -> Option<Finding> {
        self.last_score = None;
        self.last_verdict = None;
        if r.warden_schema != SCHEMA_VERSION {
            self.familiar.learn(&r.evidence);
            return None;
        }
        if r.kind == RecordKind::Init {
            return self.init_record(r, now_ms);
        }
        let warmed = self.baseline.warmed_up();
        let raw = raw_values(r);
        let mut x = [0f32; N];
        for (i, v) in x.iter_mut().enumerate() {
            *v = transform(i, raw[i]);
        }
        self.memory.settle(&mut x, &self.baseline);
        let z = self.baseline.normalise(&x);
        let mut tracker = Tracker::default();
        tracker.note_listers(&r.evidence);
        for obs in &r.evidence {
            tracker.feed(obs, &self.familiar, &self.cfg.tmp_prefix);
        }
        let error = raw[idx::STATUS_ERROR] > 0.0;
        let burst = self.bursts.note(r.request_id.as_deref(), error);
        if burst {
            tracker.add(Indicator::ErrorBurst);
        }
        if r.gauges.persisting_processes > 0 {
            tracker.add(Indicator::StillRunning);
        }
        if burned_to_timeout(r) {
            tracker.add(Indicator::BurnedToTimeout);
        }
        let produced = r.platform.produced_bytes.unwrap_or(0);
        if self.responses.oversized(produced) {
            tracker.add(Indicator::OversizedResponse);
        }
        let hits = weighted(&tracker, warmed);
        let model = self.model(&x, &z);
        let rare = self.baseline.rare_presence(&x).is_some();
        let trust = model_trust(&hits, &z, rare);
        let weighed = model.clone().map(|m| m.discounted(trust));
        let a = assess(&hits, &z, weighed.as_ref(), self.cfg.threshold);
        self.last_score = Some(round3(a.score));
        self.last_verdict = Some(Verdict {
            assessment: a.clone(),
            indicators: tracker.hits.iter().map(|h| h.indicator).collect(),
            z,
        });
        let live = r.request_id.as_deref().and_then(|id| {
            let pos = self.live.iter().position(|l| l.request_id == id)?;
            self.live.remove(pos)
        });
        let learning = self.learning();
        self.scored += 1;
        let hard_evidence: Vec<Observation> = tracker
            .hits
            .iter()
            .filter(|h| h.indicator.is_hard())
            .flat_map(|h| h.evidence.iter().cloned())
            .collect();
        let hard = tracker.hits.iter().any(|h| h.indicator.is_hard());
        // Judged against what was familiar before it; then it counts towards habits, reported
        // or not (no deadlock: a function that shells out by design is learned while it is
        // being reported).
        let unfamiliar: Vec<Habit> = Habit::of(&r.evidence)
            .into_iter()
            .filter(|h| !self.familiar.knows(h))
            .collect();
        self.note_early_contacts(r);
        self.familiar
            .note_invocation(&r.evidence, if hard { &hard_evidence } else { &[] });
        self.familiar
            .note_threads_kept(r.request_id.as_deref(), &r.gauges);
        if hard && a.score >= self.cfg.threshold {
            self.familiar.name_taints(&r.evidence, a.class);
        }
        // Denial of wallet that only the baseline and the model see, within what the function
        // has cost before: a big input, not a wallet run up (see `cost`).
        let cpu_ms = raw[idx::CPU_MS];
        let duration_ms = raw[idx::DURATION_MS];
        let within_cost = a.class == Class::DenialOfWallet
            && a.indicators < self.cfg.threshold
            && !self.costs.beyond(cpu_ms, duration_ms);
        let clean = a.score < self.cfg.threshold || within_cost;
        self.responses.note(produced, clean);
        self.costs.note(cpu_ms, duration_ms, clean);
        if clean {
            self.baseline.observe(&x);
            self.familiar.learn(&r.evidence);
            return None;
        }
        if a.class == Class::Probing && !burst {
            // A lone error: held until a burst names it (see `burst`).
            return None;
        }
        // The model's vote with no indicator at the threshold and no clear deviation of this
        // function's own behaviour behind it: a 4 MB response where the function's responses
        // were kilobytes is one even below the baseline's own alarm; one temp file more than
        // usual is not.
        // Below its own alarm, the deviation must show the class the vote names (a long,
        // failed invocation does not back "reverse shell").
        let model_alone = a.indicators < self.cfg.threshold
            && a.baseline < self.cfg.threshold
            && class_baseline(&a) < SUPPORTING_BASELINE * self.cfg.threshold;
        // The generic model's class, when it alarms: news the first time in the environment.
        let model_alarm = model
            .as_ref()
            .and_then(|m| m.class)
            .map(|(c, _)| c)
            .filter(|_| a.model >= self.cfg.threshold);
        let model_news = model_alarm.is_some_and(|c| !self.model_classes.contains(&c));
        if model_alone && !burst {
            // The generic model's vote with nothing of this function's own to support it:
            // the baseline still learns the invocation (it refuses outliers itself), so a
            // function the model misjudges does not stay unlearned for ever.
            self.baseline.observe(&x);
            if !learning && !self.profiled {
                // Past the learning period the environment's own history is the judge: a
                // function unlike any the model was trained on is not flagged for ever. With
                // a profile the vote stays a low-severity finding.
                self.health.add(Counter::ModelVotesUnsupported, 1);
                return None;
            }
            // Reported once per class, and again only with something not reported before:
            // the indicators below the threshold that come with it (an unknown destination,
            // a new program) are the function's habits being learned, not news each time.
            let new_habit = unfamiliar.iter().any(|h| !self.was_reported(h));
            if !self.model_classes.insert(a.class) && !new_habit {
                self.health.add(Counter::FindingsSummarised, 1);
                return None;
            }
        }
        // Something planted that keeps running or calling out is news at every invocation,
        // not only the first time; so is each response that takes data out.
        let ongoing = [
            Indicator::Beaconing,
            Indicator::StillRunning,
            Indicator::OversizedResponse,
        ]
        .into_iter()
        .any(|i| tracker.get(i).is_some());
        if learning
            && !model_alone
            && !hard
            && !ongoing
            && a.baseline < SUPPORTING_BASELINE * self.cfg.threshold
            && !model_news
            && !unfamiliar.is_empty()
        {
            // One finding per new habit: an invocation that shows only habits reported before
            // adds nothing while the environment learns. A clear baseline deviation is news of
            // its own (a second upload to a destination reported once is still an upload); the
            // generic model's, the first time it names a class here (it judges the function
            // by other functions' habits, and says the same of each of its invocations).
            if unfamiliar.iter().all(|h| self.was_reported(h)) {
                self.health.add(Counter::FindingsSummarised, 1);
                return None;
            }
        }
        if learning && !hard {
            self.note_reported(&unfamiliar);
            if let Some(c) = model_alarm {
                self.model_classes.insert(c);
            }
        }
        // Without a hard indicator, a finding made while the environment learns, or one that
        // only the model's vote carried, is low severity.
        let quiet = !hard && (learning || model_alone);
        let earlier_requests = if a.class == Class::Probing {
            self.bursts.take_unreported()
        } else {
            beacon_contacts(
                &mut self.early_contacts,
                &mut self.familiar,
                &tracker,
                r.request_id.as_deref(),
            )
        };
        self.bursts.mark_reported();
        if live
            .as_ref()
            .is_some_and(|l| already_reported(l, &tracker, &a, self.cfg.threshold, warmed))
        {
            return None;
        }
        let related = live.map(|l| l.finding_ids).unwrap_or_default();
        let evidence = explain::evidence(&tracker, r, a.class, MAX_FINDING_EVIDENCE);
        let mut explanation =
            explain::record(&a, &raw, &z, &indicator_counts(&tracker), &self.baseline);
        explain::name_unfeatured(&mut explanation, &tracker, Some(&raw));
        let indicators = tracker.hits.iter().map(|h| h.indicator).collect();
        let id = format!("{}-{}", self.id_base, self.next_id);
        self.next_id += 1;
        let model = model.map(|m| ModelView {
            class: m.class.map(|(c, _)| c),
            probability: round3(m.class.map_or(0.0, |(_, p)| p)),
            anomaly: round3(m.anomaly),
        });
        let parts = Parts {
            id,
            now_ms,
            request_id: r.request_id.as_deref(),
            realtime: false,
            quiet,
            indicators,
            explanation,
            evidence,
            model,
            related,
            earlier_requests,
        };
        Some(self.finding(&a, parts))
    }

    /// The init phase's record: judged by its indicators against the function's habits
    /// (the profile's; an environment has one init, so it has no history of its own), not
    /// by the model or the invocation baseline, whose figures describe invocations. What
    /// it shows becomes familiar unless a hard indicator fired; without a profile, a
    /// finding without one is low severity, as in the learning period. It names no request
    /// id: that is how a finding says it is about the init phase.
    fn init_record(&mut self, r: &FeatureRecord, now_ms: u64) -> Option<Finding> {
        let mut tracker = Tracker::default();
        // The init phase is where runtimes and agents patch (a runtime's own console, an
        // APM's http): what it patched is learned below, never reported.
        for obs in r
            .evidence
            .iter()
            .filter(|o| !matches!(o, Observation::Patched { .. }))
        {
            tracker.feed(obs, &self.familiar, &self.cfg.tmp_prefix);
        }
        let warmed = self.profiled;
        let hits = weighted(&tracker, warmed);
        let a = assess(&hits, &[0.0; N], None, self.cfg.threshold);
        let hard = hits.iter().any(|h| h.hard);
        if !hard {
            self.familiar.learn(&r.evidence);
        }
        if a.score < self.cfg.threshold {
            return None;
        }
        let raw = raw_values(r);
        let counts = indicator_counts(&tracker);
        let explanation = explain::record(&a, &raw, &[0.0; N], &counts, &self.baseline);
        let id = format!("{}-{}", self.id_base, self.next_id);
        self.next_id += 1;
        let parts = Parts {
            id,
            now_ms,
            request_id: None,
            realtime: false,
            quiet: !hard && !self.profiled,
            indicators: tracker.hits.iter().map(|h| h.indicator).collect(),
            explanation,
            evidence: explain::evidence(&tracker, r, a.class, MAX_FINDING_EVIDENCE),
            model: None,
            related: Vec::new(),
            earlier_requests: Vec::new(),
        };
        Some(self.finding(&a, parts))
    }

    fn model(&self, x: &[f32; N], z: &[f32; N]) -> Option<ModelOutput> {
        match &self.scorer {
            Some(s) => Some(s.score(x, z)),
            None => {
                self.health.note(
                    Counter::ScoredWithoutModel,
                    format_args!("no usable model: scoring with baseline and rules alone"),
                );
                None
            }
        }
    }

    fn finding(&self, a: &Assessment, p: Parts<'_>) -> Finding {
        Finding {
            warden_finding: FINDING_VERSION,
            id: p.id,
            time_unix_ms: p.now_ms,
            request_id: p.request_id.map(str::to_string),
            function_name: self.cfg.function_name.clone(),
            function_version: self.cfg.function_version.clone(),
            class: a.class,
            severity: if p.quiet {
                Severity::Low
            } else {
                severity(a.score, a.class)
            },
            score: round3(a.score),
            realtime: p.realtime,
            indicators: p.indicators,
            explanation: p.explanation,
            evidence: redacted(&p.evidence),
            raw_evidence: p.evidence,
            model: p.model,
            baseline: BaselineView {
                warmed_up: self.baseline.warmed_up(),
                learned: self.baseline.learned(),
            },
            related: p.related,
            earlier_requests: p.earlier_requests,
            actions: Vec::new(),
            feature_schema: SCHEMA_VERSION,
            vector_version: VECTOR_VERSION,
        }
    }
}

/// Redacted copies of raw evidence, without the repeats redaction makes (two command lines
/// that differed only in a secret).
fn redacted(raw: &[Observation]) -> Vec<Observation> {
    let mut out: Vec<Observation> = Vec::with_capacity(raw.len());
    for obs in raw {
        let (clean, _) = redact::observation(obs);
        if !out.contains(&clean) {
            out.push(clean);
        }
    }
    out
}

/// The parts of a finding that differ between the real-time and the record path.
struct Parts<'a> {
    id: String,
    now_ms: u64,
    request_id: Option<&'a str>,
    realtime: bool,
    /// Low severity whatever the score (see `record`).
    quiet: bool,
    indicators: Vec<Indicator>,
    explanation: Vec<crate::schema::Explanation>,
    /// Raw: the finding keeps it for the responders and writes a redacted copy.
    evidence: Vec<Observation>,
    model: Option<ModelView>,
    related: Vec<String>,
    earlier_requests: Vec<String>,
}

fn weighted(t: &Tracker, warmed: bool) -> Vec<Weighted> {
    // While a process planted by an earlier invocation runs, the shells, programs and
    // destinations that are new in this one are more likely its doing than the function's:
    // they name the class only with the planted process (persistence), unless something
    // else does. Hard indicators keep naming their own class.
    let planted = t.get(Indicator::StillRunning).is_some();
    // A payload run from /tmp, or a shell wired to a socket, that is left running is
    // persistence, not a one-off dropper or session.
    let stays = planted || t.get(Indicator::LeftRunning).is_some();
    t.hits
        .iter()
        .map(|h| Weighted {
            class: match h.indicator {
                Indicator::ExecFromTmp | Indicator::ExecFromMemory | Indicator::ShellOverSocket
                    if stays =>
                {
                    Class::Persistence
                }
                Indicator::PolicyViolation => forbidden_class(h.evidence.first()),
                // The attack that first called it, again, or what it left behind.
                Indicator::ReturningDestination => t.returning_class.unwrap_or(Class::Persistence),
                other => other.class(),
            },
            weight: h.indicator.weight(warmed),
            feature: h.indicator.feature(),
            background: h.indicator == Indicator::StillRunning
                || (planted && is_planted_doing(h.indicator)),
            hard: h.indicator.is_hard(),
        })
        .collect()
}

/// The class of a call the zero-trust policy forbids: what the call was.
fn forbidden_class(call: Option<&Observation>) -> Class {
    match call {
        Some(Observation::Connect { .. } | Observation::Send { .. }) => Class::ExfiltrationEgress,
        Some(Observation::Exec { .. }) => Class::CommandInjection,
        Some(Observation::CredentialRead { .. } | Observation::SecretSent { .. }) => {
            Class::CredentialTheft
        }
        Some(Observation::Signal { .. }) => Class::Tamper,
        // A file written where the function never writes: a payload put down.
        Some(Observation::FileWrite { .. }) => Class::Dropper,
        _ => Class::Anomaly,
    }
}

/// Soft indicators a planted process makes in the invocations after it was planted.
fn is_planted_doing(indicator: Indicator) -> bool {
    matches!(
        indicator,
        Indicator::ShellSpawned
            | Indicator::UnknownBinary
            | Indicator::ShellWithConnection
            | Indicator::UnknownDestination
    )
}

/// Per feature, how many times indicators pointing at it matched.
/// The baseline part carried by the features that show the finding's class
/// ([`class_features`]).
fn class_baseline(a: &Assessment) -> f32 {
    class_features(a.class)
        .iter()
        .map(|&i| a.credit[i][1])
        .sum()
}

fn indicator_counts(t: &Tracker) -> [u32; N] {
    let mut counts = [0u32; N];
    for h in &t.hits {
        let c = &mut counts[h.indicator.feature()];
        *c = (*c).max(h.count);
    }
    counts
}

/// The record adds nothing to what was reported in real time: no new strong indicator,
/// the same class, and neither baseline nor model alarmed on their own.
fn already_reported(
    live: &Live,
    tracker: &Tracker,
    a: &Assessment,
    threshold: f32,
    warmed: bool,
) -> bool {
    !live.emitted.is_empty()
        && live.classes.contains(&a.class)
        && a.baseline < threshold
        && a.model < threshold
        && tracker
            .hits
            .iter()
            .all(|h| live.emitted.contains(&h.indicator) || h.indicator.weight(warmed) < threshold)
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
