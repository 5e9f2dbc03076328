//! The console's metrics page: request rate, latency percentiles and errors per table over the
//! last minutes, drawn as SVG charts on the server. Its numbers are the ones `/metrics` exposes:
//! a sampler reads the text exposition every [`SAMPLE_EVERY`] and keeps the last
//! [`SAMPLES_KEPT`] readings; the page draws the differences between neighbouring readings (the
//! last against a reading taken as the page is made), as Prometheus' `rate` and
//! `histogram_quantile` would.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::pages::Layout;
use crate::metrics::Metrics;

/// How often the sampler reads the metrics.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Readings kept: fifteen minutes.
const SAMPLES_KEPT: usize = 91;
/// A reading closer than this to the last kept one makes too short an interval to draw.
const SHORTEST_INTERVAL: Duration = Duration::from_secs(1);

/// The label of requests that name no table (ListTables, refusals before the body was read).
const NO_TABLE: &str = "(no table)";
/// The row that adds up every table.
const ALL_TABLES: &str = "All tables";

/// The series of `/metrics` the page reads, with a `table` label.
const REQUEST_SERIES: [&str; 6] = [
    "dynabox_successful_request_latency_seconds_count",
    "dynabox_successful_request_latency_seconds_bucket",
    "dynabox_system_errors_total",
    "dynabox_throttled_requests_total",
    "dynabox_conditional_check_failed_requests_total",
    "dynabox_transaction_conflicts_total",
];

/// What `/metrics` says of one table's requests, summed over operations.
#[derive(Clone, Debug, Default, PartialEq)]
struct Totals {
    successful: f64,
    /// (upper bound in seconds, cumulative count) of the successful requests' latency histogram.
    buckets: Vec<(f64, f64)>,
    system_errors: f64,
    throttled: f64,
    conditional_check_failed: f64,
    transaction_conflicts: f64,
}

impl Totals {
    fn add_bucket(&mut self, bound: f64, count: f64) {
        match self.buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, total)) => *total += count,
            None => {
                self.buckets.push((bound, count));
                self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }

    fn add(&mut self, other: &Totals) {
        self.successful += other.successful;
        for &(bound, count) in &other.buckets {
            self.add_bucket(bound, count);
        }
        self.system_errors += other.system_errors;
        self.throttled += other.throttled;
        self.conditional_check_failed += other.conditional_check_failed;
        self.transaction_conflicts += other.transaction_conflicts;
    }

    fn errors(&self) -> f64 {
        self.system_errors + self.throttled + self.conditional_check_failed + self.transaction_conflicts
    }

    /// What happened between `earlier` and this reading.
    fn since(&self, earlier: &Totals) -> Totals {
        let before = |bound: f64| earlier.buckets.iter().find(|(b, _)| *b == bound).map_or(0.0, |(_, c)| *c);
        Totals {
            successful: self.successful - earlier.successful,
            buckets: self.buckets.iter().map(|&(bound, count)| (bound, count - before(bound))).collect(),
            system_errors: self.system_errors - earlier.system_errors,
            throttled: self.throttled - earlier.throttled,
            conditional_check_failed: self.conditional_check_failed - earlier.conditional_check_failed,
            transaction_conflicts: self.transaction_conflicts - earlier.transaction_conflicts,
        }
    }

    /// The latency under which a fraction `q` of the requests finished, in seconds, interpolated
    /// within its bucket as `histogram_quantile` does; None without requests.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(bound, count) in &self.buckets {
            if count >= rank {
                if bound.is_infinite() {
                    return Some(lower);
                }
                let within = count - below;
                return Some(if within > 0.0 { lower + (bound - lower) * (rank - below) / within } else { bound });
            }
            (lower, below) = (bound, count);
        }
        Some(lower)
    }
}

/// One reading of the metrics.
#[derive(Clone, Debug)]
struct Sample {
    at: Instant,
    tables: BTreeMap<String, Totals>,
    user_errors: f64,
}

impl Sample {
    fn now() -> Sample {
        Sample::parse(Instant::now(), &Metrics::global().encode())
    }

    /// The request metrics of a text exposition.
    fn parse(at: Instant, exposition: &str) -> Sample {
        let mut sample = Sample { at, tables: BTreeMap::new(), user_errors: 0.0 };
        for line in exposition.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let label = |wanted: &str| label_value(labels, wanted);
            if name == "dynabox_user_errors_total" {
                sample.user_errors += value;
                continue;
            }
            if !REQUEST_SERIES.contains(&name) {
                continue;
            }
            let Some(table) = label("table") else { continue };
            let table = if table.is_empty() { NO_TABLE.to_string() } else { table };
            let totals = sample.tables.entry(table).or_default();
            match name {
                "dynabox_successful_request_latency_seconds_count" => totals.successful += value,
                "dynabox_successful_request_latency_seconds_bucket" => {
                    if let Some(bound) = label("le").and_then(|le| le.parse::<f64>().ok()) {
                        totals.add_bucket(bound, value);
                    }
                }
                "dynabox_system_errors_total" => totals.system_errors += value,
                "dynabox_throttled_requests_total" => totals.throttled += value,
                "dynabox_conditional_check_failed_requests_total" => totals.conditional_check_failed += value,
                "dynabox_transaction_conflicts_total" => totals.transaction_conflicts += value,
                _ => {}
            }
        }
        sample
    }

    fn table(&self, name: &str) -> Totals {
        if name == ALL_TABLES {
            let mut all = Totals::default();
            self.tables.values().for_each(|totals| all.add(totals));
            return all;
        }
        self.tables.get(name).cloned().unwrap_or_default()
    }
}

/// The value of label `wanted` in `a="x",b="y"` (exposition escapes undone).
fn label_value(labels: &str, wanted: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        if name == wanted {
            return Some(value);
        }
        rest = after[end + 1..].trim_start_matches(',');
    }
    None
}

/// The readings of the last minutes.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// Reads the metrics now and every [`SAMPLE_EVERY`]; runs until dropped.
    pub async fn sample(&self) {
        let mut ticks = tokio::time::interval(SAMPLE_EVERY);
        loop {
            ticks.tick().await;
            self.keep(Sample::now());
        }
    }

    fn keep(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The page's numbers: every table's, as of now.
    pub fn page(&self) -> MetricsPage {
        let kept: Vec<Sample> = self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
        MetricsPage::from_samples(&with_reading(kept, Sample::now()))
    }
}

/// The kept readings and one taken now, which the page always shows: a reading now too close to
/// the last kept one (an interval too short to draw) takes its place, unless that one is all
/// there is.
fn with_reading(mut samples: Vec<Sample>, now: Sample) -> Vec<Sample> {
    let too_close = samples.last().is_some_and(|last| now.at.duration_since(last.at) < SHORTEST_INTERVAL);
    if too_close && samples.len() > 1 {
        samples.pop();
    }
    samples.push(now);
    samples
}

/// The page: its layout and its numbers.
#[derive(Serialize)]
pub struct Page {
    pub layout: Layout,
    #[serde(flatten)]
    pub numbers: MetricsPage,
}

#[derive(Serialize, Debug)]
pub struct MetricsPage {
    /// The minutes the charts span.
    pub minutes: u64,
    pub rows: Vec<TableRow>,
    /// Refusals of bad requests, which CloudWatch counts per account, not per table.
    pub user_errors: u64,
}

/// One table's numbers over the window, and its charts.
#[derive(Serialize, Debug)]
pub struct TableRow {
    pub table: String,
    /// Successful requests per second over the last interval.
    pub rate: String,
    pub requests: u64,
    pub p50_ms: String,
    pub p99_ms: String,
    pub system_errors: u64,
    pub throttled: u64,
    pub conditional_check_failed: u64,
    pub transaction_conflicts: u64,
    pub rate_chart: Chart,
    pub latency_chart: Chart,
}

/// An SVG line chart: polylines in a [`Chart::WIDTH`] × [`Chart::HEIGHT`] box, the top of
/// which is `top`.
#[derive(Serialize, Debug)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub top: String,
    pub lines: Vec<Line>,
}

#[derive(Serialize, Debug)]
pub struct Line {
    /// Its name in the legend, also its CSS class.
    pub name: &'static str,
    pub points: String,
}

impl Chart {
    const WIDTH: u32 = 300;
    const HEIGHT: u32 = 80;

    /// Lines of (seconds before the window's end, value) points over a window of `span` seconds;
    /// `unit` follows the top value.
    fn new(span: f64, unit: &str, lines: Vec<(&'static str, Vec<(f64, f64)>)>) -> Chart {
        let top = nice_ceiling(lines.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)).fold(0.0, f64::max));
        let (width, height) = (f64::from(Chart::WIDTH), f64::from(Chart::HEIGHT));
        let lines = lines
            .into_iter()
            .map(|(name, points)| {
                let points = points
                    .iter()
                    .map(|&(ago, value)| {
                        let x = width * (1.0 - ago / span.max(1.0));
                        let y = height * (1.0 - value / top);
                        format!("{x:.1},{y:.1}")
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                Line { name, points }
            })
            .collect();
        Chart {
            width: Chart::WIDTH,
            height: Chart::HEIGHT,
            top: format!("{} {unit}", format!("{top:.6}").trim_end_matches('0').trim_end_matches('.')),
            lines,
        }
    }
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `value` (1 for nothing).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|step| step * power).find(|&nice| nice >= value).unwrap_or(10.0 * power)
}

/// A number as the page prints it: three significant digits at most.
fn number(value: f64) -> String {
    match value {
        v if v >= 100.0 || v == 0.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 1.0 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}

impl MetricsPage {
    fn from_samples(samples: &[Sample]) -> MetricsPage {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            unreachable!("the page always has a reading taken now")
        };
        let span = last.at.duration_since(first.at).as_secs_f64();
        let mut names: Vec<&str> = vec![ALL_TABLES];
        names.extend(last.tables.keys().map(String::as_str));
        let rows = names.into_iter().map(|name| TableRow::new(name, samples, span)).collect();
        MetricsPage {
            minutes: (SAMPLE_EVERY * (SAMPLES_KEPT as u32 - 1)).as_secs() / 60,
            rows,
            user_errors: (last.user_errors - first.user_errors).round() as u64,
        }
    }
}

impl TableRow {
    fn new(table: &str, samples: &[Sample], span: f64) -> TableRow {
        let last = samples.last().expect("at least the reading taken now");
        let (mut rates, mut errors, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for pair in samples.windows(2) {
            let seconds = pair[1].at.duration_since(pair[0].at).as_secs_f64();
            // Each interval's value spans it: a step from its start to its end.
            let ends =
                [last.at.duration_since(pair[0].at), last.at.duration_since(pair[1].at)].map(|d| d.as_secs_f64());
            let interval = pair[1].table(table).since(&pair[0].table(table));
            let step = |line: &mut Vec<(f64, f64)>, value: f64| line.extend(ends.map(|ago| (ago, value)));
            step(&mut rates, interval.successful / seconds);
            step(&mut errors, interval.errors() / seconds);
            if let (Some(p50), Some(p99)) = (interval.quantile(0.5), interval.quantile(0.99)) {
                step(&mut p50s, p50 * 1000.0);
                step(&mut p99s, p99 * 1000.0);
            }
        }
        let window = last.table(table).since(&samples[0].table(table));
        let milliseconds = |q: f64| window.quantile(q).map_or_else(|| "–".into(), |s| number(s * 1000.0));
        let count = |value: f64| value.round() as u64;
        TableRow {
            table: table.to_string(),
            rate: number(rates.last().map_or(0.0, |r| r.1)),
            requests: count(window.successful),
            p50_ms: milliseconds(0.5),
            p99_ms: milliseconds(0.99),
            system_errors: count(window.system_errors),
            throttled: count(window.throttled),
            conditional_check_failed: count(window.conditional_check_failed),
            transaction_conflicts: count(window.transaction_conflicts),
            rate_chart: Chart::new(span, "req/s", vec![("successful", rates), ("errors", errors)]),
            latency_chart: Chart::new(span, "ms", vec![("p50", p50s), ("p99", p99s)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# HELP dynabox_successful_request_latency_seconds x
dynabox_successful_request_latency_seconds_bucket{table="t",operation="GetItem",le="0.001"} 0
dynabox_successful_request_latency_seconds_bucket{table="t",operation="GetItem",le="0.01"} 0
dynabox_successful_request_latency_seconds_bucket{table="t",operation="GetItem",le="+Inf"} 0
dynabox_successful_request_latency_seconds_count{table="t",operation="GetItem"} 0
dynabox_user_errors_total{operation="PutItem"} 1
"#;
    const AFTER: &str = r#"dynabox_successful_request_latency_seconds_bucket{table="t",operation="GetItem",le="0.001"} 50
dynabox_successful_request_latency_seconds_bucket{table="t",operation="GetItem",le="0.01"} 100
dynabox_successful_request_latency_seconds_bucket{table="t",operation="GetItem",le="+Inf"} 100
dynabox_successful_request_latency_seconds_count{table="t",operation="GetItem"} 100
dynabox_successful_request_latency_seconds_bucket{table="",operation="ListTables",le="+Inf"} 10
dynabox_successful_request_latency_seconds_count{table="",operation="ListTables"} 10
dynabox_system_errors_total{table="t",operation="GetItem"} 2
dynabox_conditional_check_failed_requests_total{table="t"} 3
dynabox_user_errors_total{operation="PutItem"} 5
"#;

    #[test]
    fn rates_percentiles_and_errors_come_from_the_differences_of_readings() {
        let start = Instant::now();
        let samples = [Sample::parse(start, BEFORE), Sample::parse(start + Duration::from_secs(10), AFTER)];
        let page = MetricsPage::from_samples(&samples);
        assert_eq!(page.user_errors, 4);
        let names: Vec<&str> = page.rows.iter().map(|r| r.table.as_str()).collect();
        assert_eq!(names, [ALL_TABLES, NO_TABLE, "t"]);
        let t = &page.rows[2];
        assert_eq!((t.rate.as_str(), t.requests), ("10.0", 100));
        // Half the requests took at most 1 ms; the 99th percentile lies in (1 ms, 10 ms].
        assert_eq!((t.p50_ms.as_str(), t.p99_ms.as_str()), ("1.00", "9.82"));
        assert_eq!((t.system_errors, t.conditional_check_failed), (2, 3));
        let all = &page.rows[0];
        assert_eq!((all.rate.as_str(), all.requests), ("11.0", 110));
        assert_eq!(t.rate_chart.top, "10 req/s");
        assert_eq!(t.rate_chart.lines[0].points, "0.0,0.0 300.0,0.0");
    }

    #[test]
    fn the_page_always_shows_the_reading_taken_now() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let kept = vec![Sample::parse(at(0), BEFORE), Sample::parse(at(10_000), BEFORE)];
        // Half a second after the last reading: the requests since then still count.
        let samples = with_reading(kept.clone(), Sample::parse(at(10_500), AFTER));
        assert_eq!(samples.len(), 2);
        let t = MetricsPage::from_samples(&samples).rows.into_iter().find(|r| r.table == "t").unwrap();
        assert_eq!((t.requests, t.conditional_check_failed), (100, 3));
        assert_eq!(with_reading(kept.clone(), Sample::parse(at(12_000), AFTER)).len(), 3);
        assert_eq!(with_reading(kept[..1].to_vec(), Sample::parse(at(200), AFTER)).len(), 2);
    }

    #[test]
    fn label_values_are_unescaped() {
        assert_eq!(label_value(r#"table="a\"b",le="1""#, "le").as_deref(), Some("1"));
        assert_eq!(label_value(r#"table="a\"b\\",le="1""#, "table").as_deref(), Some("a\"b\\"));
        assert_eq!(label_value(r#"table="a""#, "le"), None);
    }
}
