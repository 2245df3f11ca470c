//! `--compare`'s figures: each metric's rounds on both builds, their medians and ratios, as
//! Markdown tables and as the record written to results.json.

use serde::Serialize;

use super::Run;

/// One figure, measured on both builds every round.
#[derive(Debug, Serialize)]
pub(crate) struct Metric {
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    /// One value per round, in round order.
    new: Vec<f64>,
    old: Vec<f64>,
    /// Each round's new / old.
    ratios: Vec<f64>,
    median_new: f64,
    median_old: f64,
    /// median(new) / median(old): the figure to hold against the 10 % bound.
    ratio_of_medians: f64,
    median_of_ratios: f64,
    /// Each build's lowest round, and their ratio: a second look, since interference from other
    /// work on the machine mostly adds CPU time.
    best_new: f64,
    best_old: f64,
    ratio_of_bests: f64,
}
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Gathers the runs into one metric per figure, in the order first measured.
pub(crate) fn metrics(runs: &[Run]) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = Vec::new();
    for run in runs {
        for (key, label, unit, value) in run.figures() {
            let at = match metrics.iter().position(|m| m.key == key) {
                Some(at) => at,
                None => {
                    metrics.push(Metric {
                        key,
                        label,
                        unit,
                        new: Vec::new(),
                        old: Vec::new(),
                        ratios: Vec::new(),
                        median_new: f64::NAN,
                        median_old: f64::NAN,
                        ratio_of_medians: f64::NAN,
                        median_of_ratios: f64::NAN,
                        best_new: f64::NAN,
                        best_old: f64::NAN,
                        ratio_of_bests: f64::NAN,
                    });
                    metrics.len() - 1
                }
            };
            let metric = &mut metrics[at];
            match run.build {
                "new" => metric.new.push(value),
                _ => metric.old.push(value),
            }
        }
    }
    for m in &mut metrics {
        m.ratios = m.new.iter().zip(&m.old).map(|(n, o)| n / o).collect();
        m.median_new = median(&m.new);
        m.median_old = median(&m.old);
        m.ratio_of_medians = m.median_new / m.median_old;
        m.median_of_ratios = median(&m.ratios);
        m.best_new = m.new.iter().copied().fold(f64::NAN, f64::min);
        m.best_old = m.old.iter().copied().fold(f64::NAN, f64::min);
        m.ratio_of_bests = m.best_new / m.best_old;
    }
    metrics
}

/// Every metric's rounds, then a summary, as Markdown.
pub(crate) fn print(metrics: &[Metric], runs: &[Run]) {
    let value = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    for m in metrics {
        println!("\n### {} ({})\n", m.label, m.unit);
        println!("| Round | new | old | new / old |\n|---:|---:|---:|---:|");
        for (i, ((n, o), r)) in m.new.iter().zip(&m.old).zip(&m.ratios).enumerate() {
            println!("| {} | {} | {} | {r:.3} |", i + 1, value(*n), value(*o));
        }
        println!(
            "| median | {} | {} | **{:.3}×** (median of the rounds' ratios {:.3}×) |",
            value(m.median_new),
            value(m.median_old),
            m.ratio_of_medians,
            m.median_of_ratios
        );
        println!(
            "| best | {} | {} | {:.3}× |",
            value(m.best_new),
            value(m.best_old),
            m.ratio_of_bests
        );
    }
    println!(
        "\n| Metric | new (median) | old (median) | new / old | new ≤ old + 10 % | rounds' new / old: median (range) |"
    );
    println!("|---|---:|---:|---:|:-:|---|");
    for m in metrics {
        let within = m.ratio_of_medians <= 1.10;
        println!(
            "| {} | {} {} | {} {} | {:.3}× ({:+.1} %) | {} | {:.3}× ({:.2}–{:.2}) |",
            m.label,
            value(m.median_new),
            m.unit,
            value(m.median_old),
            m.unit,
            m.ratio_of_medians,
            (m.ratio_of_medians - 1.0) * 100.0,
            if within { "yes" } else { "**no**" },
            m.median_of_ratios,
            m.ratios.iter().copied().fold(f64::NAN, f64::min),
            m.ratios.iter().copied().fold(f64::NAN, f64::max),
        );
    }
    let suspect: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let t = r.trouble()?;
            Some(format!(
                "round {} {} {:?} {:?}: {t}",
                r.round, r.build, r.engine, r.measure
            ))
        })
        .collect();
    if !suspect.is_empty() {
        println!("\nSuspect runs (their figures are in the tables above):");
        for s in suspect {
            println!("- {s}");
        }
    }
}

#[cfg(test)]
mod tests {
    use passerby_bench::scenario::Ramp;

    use super::*;
    use crate::compare::{Engine, Measure};

    fn idle(round: usize, build: &'static str, kib: f64) -> Run {
        Run {
            round,
            build,
            binary: "passerby".into(),
            engine: Engine::Embedded,
            measure: Measure::Idle,
            fanout: None,
            idle: Some(Ramp {
                clients: 10,
                room_size: 5,
                seconds: 1.0,
                connects_per_sec: 10.0,
                rss_per_connection: Some(kib * 1024.0),
                disconnected: 0,
            }),
        }
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn each_round_pairs_the_builds_whichever_ran_first() {
        let runs = [
            idle(1, "new", 4.0),
            idle(1, "old", 2.0),
            idle(2, "old", 5.0),
            idle(2, "new", 5.0),
            idle(3, "new", 6.0),
            idle(3, "old", 4.0),
        ];
        let metrics = metrics(&runs);
        assert_eq!(metrics.len(), 1);
        let m = &metrics[0];
        assert_eq!(m.key, "idle_embedded_bytes_per_connection");
        assert_eq!(
            (m.new.as_slice(), m.old.as_slice()),
            (&[4.0, 5.0, 6.0][..], &[2.0, 5.0, 4.0][..])
        );
        assert_eq!(m.ratios, [2.0, 1.0, 1.5]);
        assert_eq!((m.median_new, m.median_old), (5.0, 4.0));
        assert_eq!(m.ratio_of_medians, 1.25);
        assert_eq!(m.median_of_ratios, 1.5);
        assert_eq!(m.ratio_of_bests, 2.0);
    }
}
