// Build: `npm run build` writes the static site to web/dist, which the same
// nginx serves at / (scripts/nginx-conf.sh).  `npm run dev` proxies the API
// and the socket to a running `make run` (PORT, default 8080).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import tailwindcss from '@tailwindcss/vite';

const backend = `http://127.0.0.1:${process.env.PORT || 8080}`;

export default defineConfig({
  plugins: [react(), tailwindcss()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: {
      '/api': backend,
      '/socket.io': { target: backend.replace('http', 'ws'), ws: true },
    },
  },
});
