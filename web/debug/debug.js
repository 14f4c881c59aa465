// Acheron console (SPEC §10): the fleet at a glance, each service's page with its actions and live
// files, charts, a read-only browser of each node's fs/ exports, and the catalog event stream.
// Plain ES modules, no build step; one WebSocket to the control server (conn.js). The view is the
// URL's hash: #fleet, #service/<node>/<service>, #charts[/<node>], #fs/<node>/<path>, #events.
import { closeCharts, openCharts, startChartsView } from './charts-view.js';
import { on, startConnection } from './conn.js';
import { $, show } from './dom.js';
import { startEvents } from './events.js';
import { startFleet } from './fleet.js';
import { startFleetView } from './fleet-view.js';
import { openFs } from './fs-browser.js';
import { closeService, openService, startServicePage } from './service.js';

const VIEWS = ['fleet', 'service', 'charts', 'fs', 'events'];

function currentRoute() {
  const [name, ...parts] = location.hash.replace(/^#/, '').split('/');
  const view = VIEWS.includes(name) ? name : 'fleet';
  return { view, parts: parts.map((p) => decodeURIComponent(p)) };
}

/** Shows the view the hash names and (re)opens what it shows. */
function route() {
  const { view, parts } = currentRoute();
  for (const name of VIEWS) show($(`view-${name}`), name === view);
  for (const link of document.querySelectorAll('#nav a')) link.classList.toggle('current', link.dataset.view === view);
  show($('nav-service'), view === 'service');
  if (view !== 'service') closeService();
  if (view !== 'charts') closeCharts();
  if (view === 'service') {
    $('nav-service').textContent = `${parts[0]}/${parts[1]}`;
    openService(parts[0], parts[1]);
  } else if (view === 'charts') openCharts(parts[0]);
  else if (view === 'fs') void openFs(parts[0], parts.slice(1).join('/'));
}

function start() {
  startFleet();
  startFleetView();
  startEvents();
  startServicePage();
  startChartsView();
  addEventListener('hashchange', route);
  // The fs and charts views read again once (re)connected; a service page keeps reading by itself
  // (and keeps what its editors hold).
  on('ready', () => {
    const { view } = currentRoute();
    if (view === 'charts' || view === 'fs') route();
  });
  route();
  void startConnection();
}

start();
