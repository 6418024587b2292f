import '@continuum-hub/common/style/list-panel.css';
import './base.css';
