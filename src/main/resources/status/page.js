'use strict';
// Fills the status page in from /api/v1/status, and again every REFRESH_MS. Every value from the
// mirror enters the page as text (append of a string, textContent), never as markup: repository,
// tag and upstream names come from clients, upstreams and files on disk.

const REFRESH_MS = 10000;

/** An element with attributes and children; a string child becomes a text node. */
function el(tag, attributes, ...children) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    e.setAttribute(name, value);
  }
  e.append(...children.filter(c => c !== null && c !== undefined));
  return e;
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function bytes(n) {
  if (n === null || n === undefined) {
    return 'unknown';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
}

function percent(ratio) {
  return Math.round(ratio * 100) + '%';
}

function count(n, one, many) {
  return n + ' ' + (n === 1 ? one : many);
}

/** An ISO instant as "2026-11-27 18:40:31 UTC". */
function when(iso) {
  return iso.slice(0, 19).replace('T', ' ') + ' UTC';
}

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

function time(iso) {
  return el('time', {datetime: iso, title: ago(iso)}, when(iso));
}

function digest(d) {
  return el('code', {class: 'digest', title: d}, d);
}

function renderOverview(s) {
  const r = s.requests;
  const answered = r.hit + r.stale + r.miss;
  setText('hit-ratio', r.hitRatio === null ? '–' : percent(r.hitRatio));
  setText('hit-detail', answered === 0
      ? 'no blob or manifest requests yet'
      : (r.hit + r.stale) + ' of ' + count(answered, 'blob and manifest request', 'blob and manifest requests')
        + ' answered from the cache' + (r.stale > 0 ? ' (' + r.stale + ' stale)' : '')
        + (r.error > 0 ? '; ' + count(r.error, 'failure', 'failures') : ''));

  const served = s.servedBytes.cache + s.servedBytes.upstream;
  setText('saved', bytes(s.servedBytes.cache));
  setText('saved-detail', served === 0 ? 'nothing served yet'
      : 'served from the cache, of ' + bytes(served) + ' served (' + percent(s.servedBytes.cache / served) + ')');

  const c = s.cache;
  const cached = (c.bytes.blob || 0) + (c.bytes.manifest || 0);
  setText('cache-bytes', bytes(cached));
  const meter = document.getElementById('cache-meter');
  meter.hidden = !(c.maxBytes > 0);
  if (c.maxBytes > 0) {
    meter.value = Math.min(1, cached / c.maxBytes);
  }
  setText('cache-detail', (c.maxBytes > 0 ? 'of ' + bytes(c.maxBytes) + ' (cache.maxSize)' : 'no bound set')
      + ' · ' + count(c.entries.blob || 0, 'blob', 'blobs') + ', ' + count(c.entries.manifest || 0, 'manifest', 'manifests'));
  setText('disk-detail', c.diskFreeBytes === null || c.diskSizeBytes === null ? 'disk space unknown'
      : 'disk: ' + bytes(c.diskFreeBytes) + ' free of ' + bytes(c.diskSizeBytes));

  setText('fills', s.fillsActive === null ? '–' : String(s.fillsActive));
  setText('tags-tracked', String(s.tags.tracked));
  const m = s.tags.moves;
  setText('moves-detail', count(m.pull + m.refresh, 'move', 'moves') + ' seen: ' + m.pull + ' by pulls, '
      + m.refresh + ' by the refresher');
}

function renderUpstreams(upstreams) {
  const body = document.querySelector('#upstreams tbody');
  body.replaceChildren(...upstreams.map(u => el('tr', {},
      el('td', {}, u.name, u.default ? el('span', {class: 'badge'}, 'default') : null),
      el('td', {}, el('code', {}, u.url)),
      el('td', {}, el('span', {class: 'health health-' + u.health}, u.health)),
      el('td', {}, count(u.answers, 'answer', 'answers') + ', ' + u.failed + ' failed, in the last '
          + (u.windowSeconds < 120 ? u.windowSeconds + ' s' : Math.round(u.windowSeconds / 60) + ' min')),
      el('td', {}, u.rateLimitRemaining === null ? '–' : String(u.rateLimitRemaining)))));
}

/** The replicas this one sees serving, this one marked, and what it asked of their owners; hidden alone. */
function renderCluster(c) {
  document.getElementById('cluster').hidden = c === null;
  if (c === null) {
    return;
  }
  const r = c.requestsToOwners;
  const asked = r['2xx'] + r['4xx'] + r['5xx'] + r.none;
  setText('cluster-note', count(c.replicas.length, 'replica serves', 'replicas serve') + '; this one asked their owners for '
      + count(asked, 'blob or manifest', 'blobs or manifests') + ' (' + bytes(c.receivedBytes) + ' received'
      + (r.none > 0 ? ', ' + r.none + ' unreachable' : '') + (r['5xx'] > 0 ? ', ' + r['5xx'] + ' failed' : '') + ')'
      + (c.keepCopies ? ' and keeps copies' : ''));
  document.querySelector('#replicas tbody').replaceChildren(...c.replicas.map(address => el('tr', {},
      el('td', {}, el('code', {}, address), address === c.self ? el('span', {class: 'badge'}, 'this replica') : null))));
}

/**
 * The digests a tag pointed to, newest first: when it came to point there (a move, or when the
 * mirror first saw it) and how the move was seen.
 */
function periods(t) {
  const h = t.history;
  const rows = [];
  const allKept = t.moves === h.length;
  for (let i = 0; i <= h.length; i++) {
    const left = h[i - 1];
    const arrived = h[i];
    const d = left ? left.from : t.upstreamDigest;
    let since;
    let how;
    if (arrived) {
      since = arrived.at;
      how = 'moved here, seen by ' + (arrived.seen === 'pull' ? 'a pull' : 'the refresher');
    } else if (allKept) {
      since = t.firstSeen;
      how = 'first seen';
    } else {
      since = null;
      how = 'earlier';
    }
    rows.push(el('tr', {class: i === 0 ? 'current' : ''},
        el('td', {class: 'when'}, since === null ? '' : time(since)),
        el('td', {}, digest(d)),
        el('td', {class: 'how'}, how, i === 0 ? el('span', {class: 'badge now'}, 'now') : null)));
  }
  return rows;
}

function renderTag(t) {
  const hidden = t.moves - t.history.length;
  const facts = [count(t.moves, 'move', 'moves'), 'checked ' + ago(t.lastChecked), 'pulled ' + ago(t.lastPulled)];
  return el('article', {class: 'tag'},
      el('h3', {},
          el('span', {class: 'upstream'}, t.upstream + '/'),
          el('span', {class: 'repository'}, t.repository),
          el('span', {class: 'sep'}, ':'),
          el('span', {class: 'tagname'}, t.tag),
          t.pinned ? el('span', {class: 'badge pinned'}, 'pinned') : null),
      el('p', {class: 'muted'}, facts.join(' · ')),
      t.pinned ? el('p', {class: 'muted'}, 'serves ', digest(t.digest), ' whatever upstream says') : null,
      el('table', {class: 'periods'}, el('tbody', {}, ...periods(t))),
      hidden > 0 ? el('p', {class: 'muted'}, count(hidden, 'earlier move', 'earlier moves') + ' in ',
          el('code', {}, '/api/v1/tags/' + t.upstream + '/' + t.repository + '/' + t.tag)) : null);
}

function renderTimeline(tags) {
  const shown = tags.timeline.length;
  setText('timeline-note', shown === 0 ? 'No tags tracked yet: they appear once pulled through the mirror.'
      : (shown < tags.tracked ? 'The ' + shown + ' most recently moved of ' + tags.tracked + ' tracked tags, '
          : 'Every tracked tag, ') + 'most recent moves first.');
  document.getElementById('timeline').replaceChildren(...tags.timeline.map(renderTag));
}

function problem(text) {
  const p = document.getElementById('problem');
  p.hidden = text === null;
  p.textContent = text || '';
}

async function load() {
  try {
    const response = await fetch('/api/v1/status', {cache: 'no-store', headers: {Accept: 'application/json'}});
    if (!response.ok) {
      throw new Error('HTTP ' + response.status);
    }
    const status = await response.json();
    renderOverview(status);
    renderUpstreams(status.upstreams);
    renderCluster(status.cluster);
    renderTimeline(status.tags);
    problem(null);
    setText('updated', 'Updated ' + when(new Date().toISOString()) + ' · every ' + REFRESH_MS / 1000 + ' s');
    document.body.dataset.state = 'ready';
  } catch (e) {
    problem('Could not read /api/v1/status: ' + e.message + '. Showing what was read before.');
    document.body.dataset.state = 'failed';
  } finally {
    setTimeout(load, REFRESH_MS);
  }
}

load();
