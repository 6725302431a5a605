/** The connection to the engine, shared through React context. When it drops, the UI says so and
 *  reconnects by itself; views re-subscribe because the Services object changes. */
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import type { Services } from '../main/common/contract';
import { errorMessage } from './lib/errors';
import { connectEngine, onDisconnect } from './rpc/connect';

const ServicesContext = createContext<Services | null>(null);

export function useServices(): Services {
  const services = useContext(ServicesContext);
  if (!services) throw new Error('useServices() used outside <EngineGate>');
  return services;
}

const RETRY_MS = [1000, 2000, 5000] as const;

type GateState =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'ready'; readonly services: Services; readonly lost: boolean }
  | { readonly kind: 'failed'; readonly message: string };

/** Renders its children once the engine is reachable; says so in a sentence when it is not. */
export function EngineGate({ children }: { readonly children: ReactNode }): ReactNode {
  const [state, setState] = useState<GateState>({ kind: 'connecting' });
  // Bumped to force a new attempt (the Retry button, or after a drop).
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    const tryConnect = (): void => {
      // connectEngine() shares one connection per page, so StrictMode's double effects are harmless.
      connectEngine().then(
        (services) => {
          if (!cancelled) setState({ kind: 'ready', services, lost: false });
        },
        (e: unknown) => {
          if (cancelled) return;
          // First contact failing is shown at once; after a drop we keep the last screen and retry.
          setState((s) => (s.kind === 'ready' ? { ...s, lost: true } : { kind: 'failed', message: errorMessage(e) }));
          timer = setTimeout(tryConnect, RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]);
        },
      );
    };
    tryConnect();
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [generation]);

  useEffect(() => {
    const sub = onDisconnect(() => {
      setState((s) => (s.kind === 'ready' ? { ...s, lost: true } : s));
      setGeneration((g) => g + 1);
    });
    return () => sub.dispose();
  }, []);

  if (state.kind === 'connecting') {
    return (
      <main className="center-page" aria-busy="true">
        <p className="muted">Connecting to the Vivarium engine…</p>
      </main>
    );
  }
  if (state.kind === 'failed') {
    return (
      <main className="center-page">
        <div className="notice notice-danger" role="alert">
          <h1 className="notice-title">Cannot reach the Vivarium engine</h1>
          <p>{state.message}</p>
          <p className="muted">Retrying…</p>
          <button type="button" className="btn" onClick={() => location.reload()}>
            Reload
          </button>
        </div>
      </main>
    );
  }
  return (
    <ServicesContext.Provider value={state.services}>
      {state.lost && (
        <div className="banner banner-danger engine-lost" role="alert">
          <span>Lost the connection to the Vivarium engine. Your VMs keep running; reconnecting…</span>
          <button type="button" className="btn btn-small" onClick={() => location.reload()}>
            Reload
          </button>
        </div>
      )}
      {children}
    </ServicesContext.Provider>
  );
}
