// The entry point: the operator's view at /admin, a user's mail everywhere else.

import { sayError } from './dom.js';

const root = document.getElementById('app');
const admin = location.pathname.replace(/\/+$/, '') === '/admin';

const view = admin ? import('./admin.js') : import('./mail.js');
view.then((v) => v.start(root)).catch((e) => sayError(e, 'The page could not start'));
