import { lazy, Suspense, useEffect, type ReactNode } from 'react';
import { EngineGate } from './engine';
import { FirstRunGate } from './views/first-run';
import { useRoute } from './hooks/use-route';
import { Library } from './views/library';

// The VM window carries noVNC and xterm.js; the library does not need to load them.
const VmWindow = lazy(() => import('./views/vm-window').then((m) => ({ default: m.VmWindow })));
const HostView = lazy(() => import('./views/host-view').then((m) => ({ default: m.HostView })));

export function App(): ReactNode {
  return (
    <EngineGate>
      <FirstRunGate>
        <Routes />
      </FirstRunGate>
    </EngineGate>
  );
}

function Routes(): ReactNode {
  const route = useRoute();
  useEffect(() => {
    document.documentElement.dataset.route = route.kind;
  }, [route.kind]);
  switch (route.kind) {
    case 'library':
      return <Library />;
    case 'host':
      return (
        <Suspense fallback={<main className="center-page" aria-busy="true" />}>
          <HostView />
        </Suspense>
      );
    case 'vm':
      // keyed: a different VM in the same window starts from a clean slate.
      return (
        <Suspense fallback={<main className="center-page" aria-busy="true" />}>
          <VmWindow key={route.id} id={route.id} />
        </Suspense>
      );
    case 'not-found':
      return (
        <main className="center-page">
          <div className="notice" role="alert">
            <h1 className="notice-title">Nothing here</h1>
            <p>There is no page at “{route.path}”.</p>
            <a className="btn" href="#/">
              Go to the library
            </a>
          </div>
        </main>
      );
  }
}
