// The one stylesheet of the pool's own pages (hub pages and the gateway's error pages): no external assets, and
// close to Jupyter Notebook 6's look (its Bootstrap 3 fonts, blue, buttons and inputs) so moving between the pool's
// pages and Jupyter's feels like one site.

/** Where the hub serves `POOL_CSS` (through the gateway, on the pool's own address). */
export const STYLESHEET_PATH = '/hub/static/dspool.css';

/** The stylesheet text. */
export const POOL_CSS = `*,*::before,*::after{box-sizing:border-box}
html{font-size:14px}
body{margin:0;font-family:"Helvetica Neue",Helvetica,Arial,sans-serif;font-size:13px;line-height:1.42857;color:#000;background:#fff}
a{color:#337ab7;text-decoration:none}a:hover,a:focus{color:#23527c;text-decoration:underline}
code{font-family:Menlo,Monaco,Consolas,"Courier New",monospace;font-size:90%;padding:2px 4px;color:#c7254e;background:#f9f2f4;border-radius:2px}
.bar{border-bottom:1px solid #e7e7e7;box-shadow:0 0 12px 1px rgba(87,87,87,.2);background:#fff;margin-bottom:24px}
.bar .wrap{display:flex;align-items:center;justify-content:space-between;min-height:48px;padding-top:0;padding-bottom:0}
.brand{font-size:20px;font-weight:300;color:#000;letter-spacing:.02em}.brand:hover{color:#000;text-decoration:none}
.brand b{color:#f37726;font-weight:400}
nav{display:flex;gap:12px;align-items:center;color:#777}
.wrap{max-width:760px;margin:0 auto;padding:0 16px}
main.wrap{padding-bottom:48px}
main.wrap.admin{max-width:1100px}
h1{font-size:24px;font-weight:500;margin:0 0 16px}
h2{font-size:18px;font-weight:500;margin:28px 0 10px;padding-bottom:6px;border-bottom:1px solid #eee}
p{margin:0 0 10px}
.muted{color:#777}.error{color:#a94442}
.panel{border:1px solid #ddd;border-radius:2px;padding:16px;margin:0 0 16px;background:#fff}
.panel.narrow{max-width:340px;margin:0 auto}
.alert{padding:10px 14px;margin:0 0 16px;border:1px solid transparent;border-radius:2px}
.alert-danger{color:#a94442;background:#f2dede;border-color:#ebccd1}
.alert-warning{color:#8a6d3b;background:#fcf8e3;border-color:#faebcc}
form.stack{display:grid;gap:12px;max-width:340px}
form.stack label{display:grid;gap:4px;font-weight:700}
form.row{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:0 0 10px}
input,select,textarea{font:inherit;font-size:13px;font-weight:400;width:100%;min-height:32px;padding:6px 12px;color:#555;background:#fff;border:1px solid #ccc;border-radius:2px;box-shadow:inset 0 1px 1px rgba(0,0,0,.075)}
form.row select{width:auto}
input:focus,select:focus,textarea:focus{border-color:#66afe9;outline:0;box-shadow:inset 0 1px 1px rgba(0,0,0,.075),0 0 8px rgba(102,175,233,.6)}
textarea{font-family:Menlo,Monaco,Consolas,monospace;resize:vertical}
button,.btn{display:inline-block;font:inherit;font-size:13px;min-height:32px;padding:6px 12px;line-height:1.42857;text-align:center;cursor:pointer;color:#333;background:#fff;border:1px solid #ccc;border-radius:2px}
button:hover,.btn:hover{background:#e6e6e6;border-color:#adadad;text-decoration:none;color:#333}
button.primary,.btn.primary{color:#fff;background:#337ab7;border-color:#2e6da4}
button.primary:hover,.btn.primary:hover{color:#fff;background:#286090;border-color:#204d74}
button.danger{color:#fff;background:#d9534f;border-color:#d43f3a}button.danger:hover{background:#c9302c}
form.stack button{width:100%}
ul.keys{list-style:none;padding:0;margin:0 0 12px}ul.keys li{display:flex;gap:8px;align-items:center;padding:6px 0;border-bottom:1px solid #eee}
ul.keys li form{margin-left:auto}
progress{width:100%;height:20px;accent-color:#337ab7}
ol#log{color:#777;font-size:12px;padding-left:20px}
`;
