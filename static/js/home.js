// Home: the stories tray on top, live and scheduled rooms below.

import { renderTray } from './stories/tray.js';
import { createRoomButton, renderRoomLists } from './rooms/list.js';
import { h, mount } from './ui.js';

export async function renderHome(view) {
  const tray = h('section', { class: 'tray-section', 'aria-label': 'Stories' });
  const rooms = h('div', { class: 'rooms' });
  mount(
    view,
    tray,
    h(
      'section',
      { class: 'rooms-section', 'aria-labelledby': 'rooms-heading' },
      h('div', { class: 'section-head' }, h('h1', { id: 'rooms-heading' }, 'Rooms'), createRoomButton()),
      rooms,
    ),
  );
  await Promise.all([renderTray(tray), renderRoomLists(rooms)]);
  // Live room counts change: refresh the lists while the page is open.
  const timer = setInterval(() => {
    if (!document.hidden) renderRoomLists(rooms);
  }, 15000);
  return () => clearInterval(timer);
}
