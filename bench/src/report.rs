//! Results: a Markdown table with ratios, a JSON record, and an SVG chart drawn from them.

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::scenario::{Fanout, Latency, Ramp};

#[derive(Debug, Clone, Serialize, Default)]
pub struct ServerResults {
    pub name: String,
    pub fanout: Option<Fanout>,
    pub latency: Option<Latency>,
    pub ramp: Option<Ramp>,
    /// passerby only: many idle connections in rooms, and the most it holds at once.
    pub idle: Option<Ramp>,
    pub max: Option<Ramp>,
}

/// One comparable figure: lower is better for all of them.
struct Row {
    label: &'static str,
    unit: &'static str,
    get: fn(&ServerResults) -> Option<f64>,
}

const ROWS: &[Row] = &[
    Row {
        label: "Fan-out CPU per delivery",
        unit: "ns",
        get: |r| r.fanout.as_ref().and_then(|f| f.cpu_ns_per_delivery),
    },
    Row {
        label: "Fan-out time per delivery (wall)",
        unit: "ns",
        get: |r| r.fanout.as_ref().map(|f| 1e9 / f.deliveries_per_sec),
    },
    Row {
        label: "Idle memory per connection",
        unit: "KiB",
        get: |r| {
            r.ramp
                .as_ref()
                .and_then(|m| m.rss_per_connection)
                .map(|b| b / 1024.0)
        },
    },
    Row {
        label: "Latency p50",
        unit: "ms",
        get: |r| r.latency.as_ref().map(|l| l.p50_ms),
    },
    Row {
        label: "Latency p99",
        unit: "ms",
        get: |r| r.latency.as_ref().map(|l| l.p99_ms),
    },
    Row {
        label: "Connection ramp",
        unit: "s",
        get: |r| r.ramp.as_ref().map(|m| m.seconds),
    },
];

pub fn markdown(ours: &ServerResults, seed: Option<&ServerResults>) -> String {
    let mut out = String::new();
    out.push_str("| Measure | passerby | Node seed | passerby is |\n|---|---:|---:|---:|\n");
    for row in ROWS {
        let a = (row.get)(ours);
        let b = seed.and_then(|s| (row.get)(s));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.1}× better", b / a),
            _ => "–".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.label,
            fmt(a, row.unit),
            fmt(b, row.unit),
            ratio
        ));
    }
    let losses = |r: &ServerResults| {
        r.fanout.as_ref().map_or(0, |f| f.losses) + r.latency.as_ref().map_or(0, |l| l.losses)
    };
    out.push_str(&format!(
        "| Losses | {} | {} | |\n",
        losses(ours),
        seed.map_or("–".into(), |s| losses(s).to_string())
    ));
    out
}

fn fmt(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} {unit}"),
        Some(v) if v >= 1.0 => format!("{v:.2} {unit}"),
        Some(v) => format!("{v:.3} {unit}"),
        None => "–".into(),
    }
}

/// Bars of "how many times better than the seed" for each measure.
pub fn chart(ours: &ServerResults, seed: &ServerResults, path: &Path) -> anyhow::Result<()> {
    let bars: Vec<(&str, f64)> = ROWS
        .iter()
        .filter_map(|row| {
            let (a, b) = ((row.get)(ours)?, (row.get)(seed)?);
            (a > 0.0).then_some((row.label, b / a))
        })
        .collect();
    let height = 80 + 50 * bars.len() as u32;
    let root = SVGBackend::new(path, (820, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|(_, r)| *r).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "passerby vs the Node.js seed: times better (higher is better)",
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(30)
        .y_label_area_size(250)
        .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bars.get(*i).map_or(String::new(), |b| b.0.to_owned()),
            _ => String::new(),
        })
        .x_desc("ratio (Node seed / passerby)")
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, ratio))| {
        Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (*ratio, SegmentValue::Exact(i + 1)),
            ],
            RGBColor(46, 125, 50).filled(),
        )
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, ratio))| {
        Text::new(
            format!("{ratio:.1}×"),
            (*ratio + max * 0.01, SegmentValue::CenterOf(i)),
            ("sans-serif", 16),
        )
    }))?;
    root.present()?;
    Ok(())
}
