// Fetches https://api.github.com/repos/acme/shop through the proxy named by
// HTTPS_PROXY, opening the CONNECT tunnel by hand (Node before 24 does not
// read proxy variables itself), and verifies the proxy's certificate with
// Node's default roots plus NODE_EXTRA_CA_CERTS — what `countersign run` sets.
const http = require('http');
const tls = require('tls');

const proxy = new URL(process.env.HTTPS_PROXY);
const auth = 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64');
const req = http.request({
  host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: 'api.github.com:443',
  headers: { 'Proxy-Authorization': auth, Host: 'api.github.com:443' },
});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) {
    console.error('CONNECT answered', res.statusCode);
    process.exit(1);
  }
  const s = tls.connect({ socket, servername: 'api.github.com' }, () => {
    s.write('GET /repos/acme/shop HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n');
  });
  let data = '';
  s.on('data', (d) => { data += d; });
  s.on('end', () => { console.log(data); });
  s.on('error', (e) => { console.error('TLS:', e.message); process.exit(2); });
});
req.on('error', (e) => { console.error(e.message); process.exit(3); });
req.end();
