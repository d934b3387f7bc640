//! A real browser for the HTML reports: Debian's `chromium`, headless, in a
//! network namespace of its own with no interface up (`unshare -n`), so a
//! page that needed the network would show it. Each run gets its own
//! profile dir and a deadline; chromium and everything it forks are one
//! process group, ended together if it overstays. `--no-sandbox` because
//! the tests run as root, where chromium's sandbox refuses to start.
//!
//! `dump_dom` prints the DOM once the page loaded (its scripts run);
//! `screenshot` writes a PNG of the viewport, and `Png` reads one back.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
const DEADLINE: Duration = Duration::from_secs(120);

pub struct Chromium {
    dir: tempfile::TempDir,
}

impl Chromium {
    pub fn new() -> Chromium {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)"
        );
        Chromium {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs chromium on `url` with `args`; its stdout.
    fn run(&self, args: &[String], url: &str) -> String {
        let out_path = self.dir.path().join("stdout");
        let err_path = self.dir.path().join("stderr");
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-n",
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .arg(format!(
            "--user-data-dir={}",
            self.dir.path().join("profile").display()
        ))
        .args([
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .process_group(0);
        let mut child = cmd.spawn().expect("unshare and chromium run");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > DEADLINE {
                // The group we made: chromium and its zygote and renderers.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                panic!(
                    "chromium did not finish {url} in {DEADLINE:?}\n{}",
                    fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        assert!(
            status.success(),
            "chromium {args:?} {url} ended {status}\n{stderr}"
        );
        fs::read_to_string(&out_path).unwrap()
    }

    /// The page's DOM, serialized, after it loaded and its scripts ran.
    /// `--allow-file-access-from-files` lets a test's page read a report
    /// it frames from another file.
    pub fn dump_dom(&self, url: &str) -> String {
        self.run(
            &["--allow-file-access-from-files".into(), "--dump-dom".into()],
            url,
        )
    }

    /// A PNG of the page in a `width` x `height` window.
    pub fn screenshot(&self, url: &str, png: &Path, width: u32, height: u32) {
        self.run(
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={width},{height}"),
            ],
            url,
        );
        assert!(png.is_file(), "chromium wrote no {}", png.display());
    }
}

/// A `file://` URL for an absolute path of plain characters.
pub fn file_url(path: &Path) -> String {
    let path: PathBuf = fs::canonicalize(path).unwrap();
    format!("file://{}", path.display())
}

/// A decoded PNG: 8-bit RGB or RGBA, not interlaced (what chromium writes).
pub struct Png {
    pub width: u32,
    pub height: u32,
    /// RGB of each pixel, row by row.
    pub pixels: Vec<[u8; 3]>,
}

impl Png {
    pub fn read(path: &Path) -> Png {
        let bytes = fs::read(path).unwrap();
        assert_eq!(
            &bytes[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is no PNG",
            path.display()
        );
        let mut at = 8;
        let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
        let mut idat = Vec::new();
        while at + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            let data = &bytes[at + 8..at + 8 + len];
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                    height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                    assert_eq!(data[8], 8, "bit depth");
                    channels = match data[9] {
                        2 => 3,
                        6 => 4,
                        other => panic!("PNG colour type {other}"),
                    };
                    assert_eq!(data[12], 0, "interlaced PNG");
                }
                b"IDAT" => idat.extend_from_slice(data),
                b"IEND" => break,
                _ => {}
            }
            at += 12 + len;
        }
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(idat.as_slice())
            .read_to_end(&mut raw)
            .unwrap();
        let stride = width as usize * channels;
        assert_eq!(raw.len(), (stride + 1) * height as usize, "PNG data size");
        let mut prev = vec![0u8; stride];
        let mut pixels = Vec::with_capacity(width as usize * height as usize);
        for row in raw.chunks(stride + 1) {
            let (filter, line) = (row[0], &row[1..]);
            let mut cur = vec![0u8; stride];
            for i in 0..stride {
                let a = if i >= channels { cur[i - channels] } else { 0 };
                let b = prev[i];
                let c = if i >= channels { prev[i - channels] } else { 0 };
                let predicted = match filter {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((a as u16 + b as u16) / 2) as u8,
                    4 => paeth(a, b, c),
                    other => panic!("PNG filter {other}"),
                };
                cur[i] = line[i].wrapping_add(predicted);
            }
            pixels.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
            prev = cur;
        }
        Png {
            width,
            height,
            pixels,
        }
    }

    /// Pixels of exactly this colour.
    pub fn count(&self, rgb: [u8; 3]) -> usize {
        self.pixels.iter().filter(|p| **p == rgb).count()
    }

    pub fn distinct_colours(&self) -> usize {
        let mut all: Vec<[u8; 3]> = self.pixels.clone();
        all.sort_unstable();
        all.dedup();
        all.len()
    }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = (
        (p - a as i16).abs(),
        (p - b as i16).abs(),
        (p - c as i16).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Reads what the browser rendered of the report framed in it: each phase
/// section, each node's (or suite's) rows (a `<tbody>`) with the rendered
/// text of each `data-k` cell, each timeline lane with its steps, each cell
/// of the tests x nodes x iterations matrix with its squares, each
/// link; whether each is on screen (laid out with a size, not hidden). The
/// result lands in `#out` as JSON.
const PROBE: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><script>
function shown(el) {
  var r = el.getBoundingClientRect();
  var s = el.ownerDocument.defaultView.getComputedStyle(el);
  return r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 &&
    s.visibility === 'visible' && s.display !== 'none' && s.opacity !== '0';
}
function text(el) { return el ? el.innerText.trim() : null; }
function probe(frame) {
  var d = frame.contentDocument, out = {
    title: d.title, height: Math.ceil(d.body.getBoundingClientRect().height),
    verdict: text(d.querySelector('[data-k=verdict]')),
    sections: [], rows: [], lanes: [], links: []
  };
  d.querySelectorAll('section[data-phase]').forEach(function (s) {
    out.sections.push({phase: s.dataset.phase, shown: shown(s), title: text(s.querySelector('h2'))});
  });
  d.querySelectorAll('tbody[data-node], tbody[data-suite]').forEach(function (rows) {
    var cells = {};
    rows.querySelectorAll('[data-k]').forEach(function (c) { cells[c.dataset.k] = text(c); });
    // The verdict's badge: legible, its text not the colour of its ground.
    var badge = rows.querySelector('.badge'), look = badge.ownerDocument.defaultView.getComputedStyle(badge);
    // A scenario's steps, each its node's line under the suite's row.
    var steps = Array.from(rows.querySelectorAll('tr[data-step]')).map(function (r) {
      var c = {};
      r.querySelectorAll('[data-s]').forEach(function (e) { c[e.dataset.s] = text(e); });
      return {step: r.dataset.step, node: r.dataset.node, shown: shown(r), cells: c};
    });
    out.rows.push({phase: rows.closest('section').dataset.phase, node: rows.dataset.node || null,
      suite: rows.dataset.suite || null, shown: shown(rows), cells: cells, steps: steps,
      badge: {shown: shown(badge), color: look.color, background: look.backgroundColor}});
  });
  d.querySelectorAll('svg g[data-node]').forEach(function (g) {
    out.lanes.push({node: g.dataset.node, shown: shown(g),
      steps: Array.from(g.querySelectorAll('rect[data-step]')).map(function (r) {
        return {step: r.dataset.step, outcome: r.dataset.outcome, shown: shown(r)};
      })});
  });
  // The matrix: each test's cell on each node, its squares, their colours,
  // and the failure each failed square links to (its heading's text).
  out.grid = [];
  d.querySelectorAll('section[data-phase=matrix] tr[data-test]').forEach(function (tr) {
    tr.querySelectorAll('td[data-cell]').forEach(function (td) {
      var tag = td.querySelector('.tag'), view = d.defaultView;
      out.grid.push({test: tr.dataset.test, node: td.dataset.cell, verdict: td.dataset.verdict,
        shown: shown(td), tag: tag ? text(tag) : null, frame: view.getComputedStyle(td).boxShadow,
        squares: Array.from(td.querySelectorAll('.c')).map(function (c) {
          var href = c.getAttribute('href'), target = href ? d.getElementById(href.slice(1)) : null;
          return {i: Number(c.dataset.i), mark: c.dataset.mark, shown: shown(c),
            width: c.getBoundingClientRect().width, background: view.getComputedStyle(c).backgroundColor,
            href: href, target: target ? text(target.querySelector('h3')) : null};
        })});
    });
  });
  var grid = d.querySelector('table.grid');
  out.grid_right = grid ? grid.getBoundingClientRect().right : null;
  d.querySelectorAll('a[href]').forEach(function (a) {
    var li = a.closest('li'), rows = a.closest('tbody');
    out.links.push({href: a.getAttribute('href'), text: text(a), shown: shown(a),
      node: rows ? rows.dataset.node : null, test: li ? li.dataset.test : null});
  });
  // No '<', '>' or '&' for the DOM dump to escape.
  document.getElementById('out').textContent = JSON.stringify(out).replace(/[<>&]/g,
    function (c) { return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'); });
}
</script></head><body>
<iframe onload="probe(this)" src="REPORT" style="width:1280px;height:8000px;border:0"></iframe>
<pre id="out">the report did not load</pre>
</body></html>
"#;

/// report.html as Chromium lays it out: each phase section, each node's
/// and suite's row (its cells' rendered text, its badge's colours), each
/// timeline lane with its steps, each link; `shown` says whether it has a
/// size on the page and is not hidden.
pub fn probe(chromium: &Chromium, report: &Path) -> Value {
    let page = report.parent().unwrap().join("probe.html");
    fs::write(&page, PROBE.replace("REPORT", &file_url(report))).unwrap();
    let dom = chromium.dump_dom(&file_url(&page));
    let start = dom.find("<pre id=\"out\">").expect("the probe page") + "<pre id=\"out\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    serde_json::from_str(&dom[start..end])
        .unwrap_or_else(|e| panic!("the probe found no report ({e}): {}", &dom[start..end]))
}

/// The probe's section for `phase` (primary, fleet, cross, listed).
pub fn section<'a>(page: &'a Value, phase: &str) -> &'a Value {
    page["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["phase"] == phase)
        .unwrap_or_else(|| panic!("no {phase} section in {page:#}"))
}
