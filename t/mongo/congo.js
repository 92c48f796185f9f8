// Start CongoDB (a MongoDB wire-protocol server in JavaScript) on
// 127.0.0.1:PORT, in memory.  Usage: node congo.js PORT
// Prints "listening PORT" once it accepts connections; SIGTERM stops it.
'use strict';
const path = require('path');
const { pathToFileURL } = require('url');

const port = parseInt(process.argv[2] || '27017', 10);
const entry = pathToFileURL(path.join(__dirname, 'smartmongo', 'dist_ts',
                                      'congodb', 'index.js')).href;
let server = null;

import(entry).then(({ CongoServer }) => {
    server = new CongoServer({ port, host: '127.0.0.1' });
    return server.start();
}).then(() => {
    process.stdout.write('listening ' + port + '\n');
}, (err) => {
    process.stderr.write('congodb: ' + (err && err.stack || err) + '\n');
    process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        Promise.resolve(server && server.stop()).finally(() => process.exit(0));
    });
}
