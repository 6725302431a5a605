import './zod-config';
import './styles.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app';
import { installRuntimeStyleShim } from './lib/runtime-styles';

// Before any library can create a <style> element (see runtime-styles.ts).
installRuntimeStyleShim(document);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
