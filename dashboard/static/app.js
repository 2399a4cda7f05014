// Live updates for Circle's dashboard. Without this script the page refreshes itself every
// 30 s (<noscript> meta refresh). With it, a server-sent event stream (/ui/events) says
// when the daemon records a reconcile, and the page fetches itself again and swaps its
// <main> in place (no reload, no lost scroll position). When the stream cannot be opened
// or is refused, the page polls instead. No framework: a few DOM calls are enough.
(function () {
  'use strict';
  var POLL_MS = 10000;
  var body = document.body;
  var live = document.getElementById('live');
  var busy = false, pending = false, polling = null;

  function say(text) { if (live) live.textContent = text; }

  // refresh fetches this page again and replaces <main> with the new one.
  function refresh(announce) {
    if (busy) { pending = true; return; }
    busy = true;
    fetch(location.href, { headers: { Accept: 'text/html' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.querySelector('main'), cur = document.querySelector('main');
        if (next && cur) cur.replaceWith(next);
        body.dataset.stamp = doc.body.dataset.stamp || '';
        document.title = doc.title;
        if (announce) say(announce);
      })
      .catch(function (e) { say('Update failed (' + e.message + '); retrying.'); })
      .finally(function () {
        busy = false;
        if (pending) { pending = false; refresh(announce); }
      });
  }

  function startPolling() {
    if (polling) return;
    say('Live updates unavailable: polling every ' + POLL_MS / 1000 + ' s.');
    polling = setInterval(function () { refresh(); }, POLL_MS);
  }

  if (window.EventSource && body.dataset.events) {
    var es = new EventSource(body.dataset.events);
    es.addEventListener('open', function () { say('Live: updates when a reconcile finishes.'); });
    es.addEventListener('status', function (ev) {
      var d = JSON.parse(ev.data);
      if (d.stamp === body.dataset.stamp) return;
      refresh('Updated: revision ' + (d.revision || '').replace(/^sha256:/, '').slice(0, 12) + (d.ready ? ', ready.' : ', ' + d.reason + '.'));
    });
    // The browser reopens a dropped stream by itself (CONNECTING); CLOSED means it gave up
    // (the server refused it), so poll.
    es.addEventListener('error', function () { if (es.readyState === EventSource.CLOSED) startPolling(); });
  } else {
    startPolling();
  }

  // Ages ("3 min ago") move on between updates; the same words as the server's.
  function age(ms) {
    var past = ms >= 0, d = Math.abs(ms) / 1000, s;
    if (d < 5) return 'just now';
    if (d < 60) s = Math.floor(d) + ' s';
    else if (d < 3600) s = Math.floor(d / 60) + ' min';
    else if (d < 172800) s = Math.floor(d / 3600) + ' h';
    else if (d < 730 * 86400) s = Math.floor(d / 86400) + ' days';
    else s = Math.floor(d / 86400 / 365) + ' years';
    return past ? s + ' ago' : 'in ' + s;
  }
  setInterval(function () {
    var now = Date.now();
    document.querySelectorAll('time[data-age]').forEach(function (t) {
      var at = Date.parse(t.getAttribute('datetime'));
      if (!isNaN(at)) t.textContent = age(now - at);
    });
  }, 15000);
})();
